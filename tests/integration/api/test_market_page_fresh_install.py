"""/market on an install whose first census ran today: each sale counts on its ``sold_at`` day
(the census read past sales from the sold views all at once), the days before the census are
marked backfilled, and the time axis shows whole days even when there is only one."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page
from pymongo.asynchronous.database import AsyncDatabase

from fragmenty_shared.contracts import Asset, EventType, ListingStatus
from fragmenty_shared.settings import Settings
from tests.integration.api.browser import WIDTHS, fits_the_viewport, open_page
from tests.integration.api.conftest import api_settings
from tests.integration.api.live_servers import FakeNotifier, running_api
from tests.integration.api.market_seed import SeedListing, seed_market

pytestmark = pytest.mark.slow

CENSUS = datetime.now(UTC).replace(microsecond=0)  # the first census: everything observed now
TODAY = datetime.combine(CENSUS.date(), datetime.min.time(), tzinfo=UTC)
DAY = timedelta(days=1)
WHOLE_DAY_TICK = re.compile(r"^[A-Z][a-z]{2} \d{1,2}$")  # "Dec 3", never "23:59:59.999"


def on_sale(asset: Asset, slug: str, ton: int) -> SeedListing:
    return SeedListing(asset, slug, ListingStatus.SALE, Decimal(ton), CENSUS)


def sold(asset: Asset, slug: str, ton: int, sold_at: datetime) -> SeedListing:
    """A sale the census read from the sold view: observed now, sold at ``sold_at``."""
    return SeedListing(
        asset,
        slug,
        ListingStatus.SOLD,
        Decimal(ton),
        CENSUS,
        sold_at=sold_at,
        changes=[(CENSUS, EventType.SOLD, ListingStatus.SOLD, Decimal(ton))],
    )


def fresh_install() -> list[SeedListing]:
    earlier_today = CENSUS - (CENSUS - TODAY) / 2
    return [
        on_sale(Asset.NUMBER, "88800001234", 900),
        on_sale(Asset.USERNAME, "wallet", 120),
        sold(Asset.NUMBER, "88800005555", 2000, TODAY - 3 * DAY + timedelta(hours=2)),
        sold(Asset.NUMBER, "88800006666", 1500, TODAY - 3 * DAY + timedelta(hours=20)),
        sold(Asset.NUMBER, "88800007777", 700, TODAY - DAY + timedelta(hours=1)),
        sold(Asset.NUMBER, "88800008888", 300, earlier_today),
        sold(Asset.USERNAME, "crypto", 15000, TODAY - 2 * DAY + timedelta(hours=3)),
    ]


async def serve(
    settings: Settings, database: AsyncDatabase[dict[str, Any]], listings: list[SeedListing]
) -> AsyncIterator[str]:
    await seed_market(database, listings)
    notifier = FakeNotifier()
    api = running_api(api_settings(settings, notifier_public_url=notifier.url))
    async with notifier.running(), api as url:
        yield url


@pytest.fixture
async def fresh_site(
    settings: Settings, mongo_db: AsyncDatabase[dict[str, Any]]
) -> AsyncIterator[str]:
    async for url in serve(settings, mongo_db, fresh_install()):
        yield url


@pytest.fixture
async def one_day_site(
    settings: Settings, mongo_db: AsyncDatabase[dict[str, Any]]
) -> AsyncIterator[str]:
    listings = [on_sale(Asset.NUMBER, "88800001234", 900), on_sale(Asset.USERNAME, "wallet", 120)]
    async for url in serve(settings, mongo_db, listings):
        yield url


def day(offset: int) -> str:
    return (TODAY + offset * DAY).date().isoformat()


async def chart_data(page: Page, chart_id: str) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = await page.evaluate(
        """(id) => document.getElementById(id).data.map(
            t => ({name: t.name, x: Array.from(t.x), y: Array.from(t.y)}))""",
        chart_id,
    )
    return data


async def tick_labels(page: Page, chart_id: str) -> list[str]:
    labels: list[str] = await page.locator(f"#{chart_id} .xtick text").all_text_contents()
    return labels


@pytest.mark.parametrize("device", list(WIDTHS))
async def test_sales_count_on_their_sold_at_day_and_past_days_are_backfilled(
    browser: Browser, fresh_site: str, artifacts_dir: Path, device: str
) -> None:
    page, errors = await open_page(browser, f"{fresh_site}/market", WIDTHS[device])
    numbers, usernames = await chart_data(page, "volume-chart")
    assert numbers["x"] == [day(-3), day(-2), day(-1), day(0)]
    assert numbers["y"] == [2000 + 1500, 0, 700, 300]
    assert usernames["x"] == [day(-2), day(-1), day(0)]
    assert usernames["y"] == [15000, 0, 0]
    # Nothing observed today counts as "sold today" but the one sale that happened today.
    assert sum(numbers["y"]) + sum(usernames["y"]) == 2000 + 1500 + 700 + 300 + 15000

    note = await page.locator("#backfilled-note").text_content() or ""
    assert f"Days up to {day(-1)} are backfilled" in " ".join(note.split())
    opacity = await page.evaluate("document.getElementById('volume-chart').data[0].marker.opacity")
    assert opacity == [0.45, 0.45, 0.45, 1]
    assert "backfilled" in await page.locator("#volume-chart .annotation").all_text_contents()

    for chart in ("floor-chart", "volume-chart"):
        labels = await tick_labels(page, chart)
        assert labels, chart
        assert all(WHOLE_DAY_TICK.match(label) for label in labels), labels
    assert await fits_the_viewport(page)
    await page.screenshot(path=artifacts_dir / f"api-market-fresh-{device}.png", full_page=True)
    assert errors == []


@pytest.mark.parametrize("device", list(WIDTHS))
async def test_a_single_day_gets_a_whole_day_axis(
    browser: Browser, one_day_site: str, artifacts_dir: Path, device: str
) -> None:
    page, errors = await open_page(browser, f"{one_day_site}/market", WIDTHS[device])
    floors = await chart_data(page, "floor-chart")
    assert [(trace["name"], trace["x"], trace["y"]) for trace in floors] == [
        ("Numbers floor", [day(0)], [900]),
        ("Numbers median", [day(0)], [900]),
        ("Usernames floor", [day(0)], [120]),
        ("Usernames median", [day(0)], [120]),
    ]
    expected = f"{TODAY:%b} {TODAY.day}"
    assert await tick_labels(page, "floor-chart") == [expected]
    assert await tick_labels(page, "volume-chart") == [expected]
    assert await page.locator("#backfilled-note").count() == 0
    await page.screenshot(path=artifacts_dir / f"api-market-one-day-{device}.png", full_page=True)
    assert errors == []
