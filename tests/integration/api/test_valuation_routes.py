"""Fair values in the api: the valuation route, fair_value_ton/discount_pct on listings, the
min_discount_pct filter, sort=discount and the CSV columns, on the real database."""

from __future__ import annotations

import contextlib
import csv
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
from pymongo.asynchronous.database import AsyncDatabase

from fragmenty_api.main import create_app
from fragmenty_shared.settings import Settings
from fragmenty_simulator.market import Market
from tests.integration.api.conftest import api_settings
from tests.integration.api.market_seed import SeedListing, seed_market

EPOCH = datetime.now(UTC).replace(microsecond=0)


def simulated_market(size: int = 160) -> tuple[Market, list[SeedListing]]:
    """The simulator's market as ingest would store it: item pages with ownership histories."""
    market = Market.generate(size, seed=4, epoch=EPOCH)
    seeds = []
    for listing in market.listings.values():
        history = [
            {
                "price_ton": None if record.price_ton is None else str(record.price_ton),
                "at": record.at.isoformat(),
                "wallet": record.wallet,
            }
            for record in listing.sales
        ]
        seeds.append(
            SeedListing(
                listing.asset,
                listing.slug,
                listing.status,
                listing.price_ton,
                listing.listed_at,
                ends_at=listing.ends_at,
                sold_at=listing.sold_at,
                details={"ownership_history": history, "bid_history": []},
            )
        )
    return market, seeds


@contextlib.asynccontextmanager
async def valued_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(api_settings(settings))
    async with app.router.lifespan_context(app):
        snapshot = await app.state.api.store.current()
        await app.state.api.valuations.refit(snapshot)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as client:
            yield client


@pytest.fixture
async def market(mongo_db: AsyncDatabase[dict[str, Any]]) -> Market:
    simulated, seeds = simulated_market()
    await seed_market(mongo_db, seeds)
    return simulated


async def test_any_number_or_username_gets_a_band_and_its_comparables(
    market: Market, settings: Settings
) -> None:
    sold = next(
        x for x in market.listings.values() if len([s for s in x.sales if s.price_ton]) >= 2
    )
    async with valued_client(settings) as client:
        known = (await client.get(f"/api/v1/valuation/{sold.asset.value}/{sold.slug}")).json()
        unlisted = (await client.get("/api/v1/valuation/number/88800000007")).json()
        name = (await client.get("/api/v1/valuation/username/nobodyhasthis")).json()
        bad = await client.get("/api/v1/valuation/number/boris")
    assert Decimal(known["low_ton"]) < Decimal(known["expected_ton"]) < Decimal(known["high_ton"])
    assert known["comparables"][0]["why"] == "same listing"
    assert known["comparables"][0]["slug"] == sold.slug
    assert known["sales_in_model"] > 20
    assert unlisted["listed"] is False
    assert unlisted["price_ton"] is None
    assert unlisted["discount_pct"] is None
    assert all(c["slug"] != "88800000007" for c in unlisted["comparables"])
    assert unlisted["confidence"] < known["confidence"]
    assert Decimal(name["expected_ton"]) > 0
    assert bad.status_code == 422


async def test_listings_carry_fair_values_filter_and_sort_by_discount(
    market: Market, settings: Settings
) -> None:
    async with valued_client(settings) as client:
        page = (await client.get("/api/v1/listings", params={"limit": 500})).json()["items"]
        deals = (
            await client.get("/api/v1/listings", params={"min_discount_pct": 20, "limit": 500})
        ).json()["items"]
        first = await client.get("/api/v1/listings", params={"sort": "discount", "limit": 7})
        second = await client.get(
            "/api/v1/listings",
            params={"sort": "discount", "limit": 7, "cursor": first.json()["next_cursor"]},
        )
        exported = await client.get("/api/v1/export.csv", params={"min_discount_pct": 20})
        bad = await client.get("/api/v1/listings", params={"min_discount_pct": 101})
    assert all(item["fair_value_ton"] is not None for item in page)
    for item in page:
        price, fair = Decimal(item["price_ton"]), Decimal(item["fair_value_ton"])
        assert item["discount_pct"] == pytest.approx(float((1 - price / fair) * 100), abs=0.01)
    expected_deals = {item["id"] for item in page if item["discount_pct"] >= 20}
    assert {item["id"] for item in deals} == expected_deals
    # Auctions open low in the simulator: there are deals, and not every listing is one.
    assert 0 < len(expected_deals) < len(page)
    ranked = first.json()["items"] + second.json()["items"]
    discounts = [item["discount_pct"] for item in ranked]
    assert discounts == sorted(discounts, reverse=True)
    assert discounts[0] == max(item["discount_pct"] for item in page)
    assert len({item["id"] for item in ranked}) == 14
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert {row["id"] for row in rows} == expected_deals
    assert all(float(row["discount_pct"]) >= 20 and row["fair_value_ton"] for row in rows)
    assert bad.status_code == 422


async def test_no_fair_values_before_the_first_fit(market: Market, settings: Settings) -> None:
    app = create_app(api_settings(settings, valuation_refit_seconds=3600))
    app.state.api.valuations.run = _never  # this test never fits
    async with app.router.lifespan_context(app):
        await app.state.api.store.current()
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as client:
            listing = (await client.get("/api/v1/listings", params={"limit": 1})).json()
            valuation = await client.get("/api/v1/valuation/number/88800000007")
            deals = await client.get("/api/v1/listings", params={"min_discount_pct": 0})
    assert listing["items"][0]["fair_value_ton"] is None
    assert valuation.status_code == 404
    assert "not fitted" in valuation.json()["detail"]
    assert deals.json()["items"] == []


async def _never() -> None:
    return None
