"""Fixtures for the api's tests: a seeded market on the real database and a client for the app."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from pymongo.asynchronous.database import AsyncDatabase

from fragmenty_api.main import create_app
from fragmenty_api.settings import ApiSettings
from fragmenty_shared.contracts import Asset, EventType, ListingStatus
from fragmenty_shared.settings import Settings
from tests.integration.api.browser import browser, chromium_path
from tests.integration.api.live_servers import FakeNotifier, running_api
from tests.integration.api.market_seed import SeedListing, seed_market

ClientFactory = Callable[..., contextlib.AbstractAsyncContextManager[httpx.AsyncClient]]

__all__ = ["browser", "chromium_path"]  # fixtures, for this folder's tests

NOW = datetime.now(UTC).replace(microsecond=0)


def api_settings(settings: Settings, **overrides: Any) -> ApiSettings:
    """This test's settings for the api; live updates from the broker only where asked for."""
    return ApiSettings(**{**settings.model_dump(), "live_updates": False, **overrides})


@pytest.fixture
def make_client(settings: Settings) -> ClientFactory:
    """Builds the app on this test's database (after the test seeded it) and a client for it."""

    @contextlib.asynccontextmanager
    async def factory(**overrides: Any) -> AsyncIterator[httpx.AsyncClient]:
        app = create_app(api_settings(settings, **overrides))
        async with app.router.lifespan_context(app):
            await app.state.api.store.current()
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as client:
                yield client

    return factory


def sample_market() -> list[SeedListing]:
    """A small market with one of everything the filters and sorts tell apart."""
    day = timedelta(days=1)
    hour = timedelta(hours=1)
    return [
        SeedListing(
            Asset.NUMBER,
            "88800007777",
            ListingStatus.AUCTION,
            Decimal("5000"),
            NOW - 5 * day,
            ends_at=NOW + 30 * timedelta(minutes=1),
        ),
        SeedListing(
            Asset.NUMBER,
            "88812347777",
            ListingStatus.AUCTION,
            Decimal("1200.5"),
            NOW - 4 * day,
            ends_at=NOW + 5 * hour,
        ),
        SeedListing(
            Asset.NUMBER,
            "88800000123",
            ListingStatus.SALE,
            Decimal("900"),
            NOW - 3 * day,
            ends_at=NOW + 10 * day,
            changes=[
                (NOW - 3 * day, EventType.LISTED, ListingStatus.SALE, Decimal("1500")),
                (NOW - 2 * day, EventType.PRICE_CHANGED, ListingStatus.SALE, Decimal("1100")),
                (NOW - 1 * day, EventType.PRICE_CHANGED, ListingStatus.SALE, Decimal("900")),
            ],
            details={
                "owner": "EQD_owner_wallet",
                "highest_bid_ton": None,
                "bid_history": [],
                "ownership_history": [
                    {"price_ton": "700", "at": (NOW - 300 * day).isoformat(), "wallet": "EQ_prev"},
                    {"price_ton": None, "at": (NOW - 200 * day).isoformat(), "wallet": "EQ_gift"},
                ],
            },
        ),
        SeedListing(
            Asset.NUMBER,
            "88800000999",
            ListingStatus.AUCTION,
            Decimal("300"),
            NOW - 2 * day,
            ends_at=NOW + 3 * day,
        ),
        SeedListing(
            Asset.NUMBER,
            "8888888",
            ListingStatus.AUCTION,
            Decimal("250000"),
            NOW - 6 * day,
            ends_at=NOW + 2 * day,
        ),
        SeedListing(
            Asset.NUMBER,
            "88855554444",
            ListingStatus.SOLD,
            Decimal("2100"),
            NOW - 8 * day,
            sold_at=NOW - 1 * day,
            changes=[
                (NOW - 8 * day, EventType.LISTED, ListingStatus.AUCTION, Decimal("1000")),
                (NOW - 1 * day, EventType.SOLD, ListingStatus.SOLD, Decimal("2100")),
            ],
        ),
        SeedListing(
            Asset.NUMBER,
            "88811112222",
            ListingStatus.AUCTION,
            Decimal("450"),
            NOW - 9 * day,
            ends_at=NOW - 2 * day,
            delisted_at=NOW - 1 * day,
        ),
        SeedListing(
            Asset.USERNAME,
            "boris",
            ListingStatus.AUCTION,
            Decimal("75"),
            NOW - 1 * day,
            ends_at=NOW + 20 * hour,
        ),
        SeedListing(Asset.USERNAME, "borisov", ListingStatus.SALE, Decimal("40"), NOW - 7 * day),
        SeedListing(
            Asset.USERNAME,
            "crypto",
            ListingStatus.SOLD,
            Decimal("15000"),
            NOW - 10 * day,
            sold_at=NOW - 3 * day,
            changes=[
                (NOW - 10 * day, EventType.LISTED, ListingStatus.AUCTION, Decimal("9000")),
                (NOW - 3 * day, EventType.SOLD, ListingStatus.SOLD, Decimal("15000")),
            ],
        ),
        SeedListing(
            Asset.USERNAME,
            "evil",
            ListingStatus.SALE,
            Decimal("10"),
            NOW - 1 * day,
            title="<script>alert(1)</script>",
        ),
    ]


@pytest.fixture
async def market(mongo_db: AsyncDatabase[dict[str, Any]]) -> list[SeedListing]:
    listings = sample_market()
    await seed_market(mongo_db, listings)
    return listings


# --- a browser and a served site, for the page tests ----------------------------------------


@pytest.fixture
async def notifier() -> AsyncIterator[FakeNotifier]:
    fake = FakeNotifier()
    async with fake.running():
        yield fake


@pytest.fixture
async def site(
    settings: Settings, mongo_db: AsyncDatabase[dict[str, Any]], notifier: FakeNotifier
) -> AsyncIterator[str]:
    await seed_market(mongo_db, sample_market())
    async with running_api(api_settings(settings, notifier_public_url=notifier.url)) as url:
        yield url
