"""Each page in headless Chromium: the plot exists with the expected points, it updates live
from the notifier's WebSocket without a reload, it reads at 1280 px and 390 px (screenshots in
artifacts/), and nothing violates the Content-Security-Policy."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser
from pymongo.asynchronous.database import AsyncDatabase

from fragmenty_shared.contracts import Asset, EventType, ListingStatus
from fragmenty_shared.settings import Settings
from tests.integration.api.browser import (
    WIDTHS,
    fits_the_viewport,
    open_page,
    points_in,
    wait_for_live_events,
)
from tests.integration.api.conftest import NOW, api_settings, sample_market
from tests.integration.api.live_servers import FakeNotifier, running_api
from tests.integration.api.market_seed import SeedListing, seed_market

pytestmark = pytest.mark.slow


def current_numbers() -> int:
    return sum(
        1
        for listing in sample_market()
        if listing.asset is Asset.NUMBER
        and listing.status is not ListingStatus.SOLD
        and listing.delisted_at is None
        and listing.ends_at is not None
        and listing.ends_at > NOW
    )


@pytest.mark.parametrize("device", list(WIDTHS))
async def test_market_map_plots_every_current_number_and_updates_live(
    browser: Browser, site: str, notifier: FakeNotifier, artifacts_dir: Path, device: str
) -> None:
    page, errors = await open_page(browser, f"{site}/", WIDTHS[device])
    assert await points_in(page, "chart") == current_numbers() == 5
    assert await fits_the_viewport(page)
    await page.screenshot(path=artifacts_dir / f"api-map-{device}.png", full_page=True)

    await asyncio.wait_for(notifier.subscribed.wait(), 10)
    newcomer = SeedListing(
        Asset.NUMBER,
        "88800001111",
        ListingStatus.AUCTION,
        Decimal(640),
        NOW,
        ends_at=NOW + timedelta(hours=8),
    )
    await notifier.push(newcomer.events()[0])
    await wait_for_live_events(page, "chart", 1)
    assert await points_in(page, "chart") == 6
    assert await page.locator("#live-status").text_content() == "live"
    assert errors == []


async def test_hovering_and_clicking_a_point_on_the_map(browser: Browser, site: str) -> None:
    page, _ = await open_page(browser, f"{site}/?q=8888888", 1280)
    assert await points_in(page, "chart") == 1
    # Where Plotly drew the one point, in page coordinates.
    x, y = await page.evaluate(
        """() => {
            const chart = document.getElementById('chart');
            const trace = chart.data.findIndex(t => t.x.length === 1);
            const point = chart.querySelectorAll('.scatterlayer .trace')[trace].querySelector('.point');
            const box = point.getBoundingClientRect();
            return [box.x + box.width / 2, box.y + box.height / 2];
        }"""
    )
    await page.mouse.move(x, y)
    hover = page.locator(".hoverlayer .hovertext")
    await hover.wait_for(timeout=5_000)
    label = await hover.text_content() or ""
    # Number, price in TON and USD (3.25 USD per TON), time left.
    assert "+888 8 888" in label
    assert "250,000 TON" in label
    assert "$812,500" in label
    # It ends two days after the market was made.
    assert label.endswith(("$812,50047 h left", "$812,50048 h left"))
    async with page.expect_navigation():
        await page.mouse.click(x, y)
    assert page.url.endswith("/listing/number/8888888")
    assert await page.locator("h1").text_content() == "+888 8 888"


async def test_market_map_modes_past_and_all(browser: Browser, site: str) -> None:
    past, _ = await open_page(browser, f"{site}/?mode=past", 1280)
    # Sold 5555 4444 and delisted 1111 2222.
    assert await points_in(past, "chart") == 2
    everything, _ = await open_page(browser, f"{site}/?mode=all", 1280)
    assert await points_in(everything, "chart") == 7
    filtered, _ = await open_page(browser, f"{site}/?mode=all&q=*7777", 1280)
    assert await points_in(filtered, "chart") == 2


@pytest.mark.parametrize("device", list(WIDTHS))
async def test_listing_page_step_chart_toggle_and_live_update(
    browser: Browser, site: str, notifier: FakeNotifier, artifacts_dir: Path, device: str
) -> None:
    page, errors = await open_page(browser, f"{site}/listing/number/88800000123", WIDTHS[device])
    assert await points_in(page, "chart", trace=0) == 3
    assert await points_in(page, "chart", trace=1) == 1  # the "listed" marker
    assert await page.evaluate("document.getElementById('chart').data[0].line.shape") == "hv"
    assert await page.locator("table tbody tr").count() >= 3
    assert await fits_the_viewport(page)
    await page.screenshot(path=artifacts_dir / f"api-listing-{device}.png", full_page=True)

    await page.click("button[data-currency='usd']")
    usd = await page.evaluate("document.getElementById('chart').data[0].y")
    assert usd == [4875, 3575, 2925]  # 1500, 1100 and 900 TON at 3.25 USD

    await asyncio.wait_for(notifier.subscribed.wait(), 10)
    cheaper = SeedListing(
        Asset.NUMBER,
        "88800000123",
        ListingStatus.SALE,
        Decimal(850),
        NOW - timedelta(days=3),
        changes=[(NOW, EventType.PRICE_CHANGED, ListingStatus.SALE, Decimal(850))],
    )
    await notifier.push(cheaper.events()[0])
    await wait_for_live_events(page, "chart", 1)
    assert await points_in(page, "chart", trace=0) == 4
    assert "850 TON" in (await page.locator("#fact-price").text_content() or "")
    assert "850" in (await page.locator("#changes tbody tr").first.text_content() or "")
    assert errors == []


@pytest.mark.parametrize("device", list(WIDTHS))
async def test_market_page_plots_floor_and_volume_per_day_and_updates_live(
    browser: Browser, site: str, notifier: FakeNotifier, artifacts_dir: Path, device: str
) -> None:
    page, errors = await open_page(browser, f"{site}/market", WIDTHS[device])
    # Numbers: from the first listing 9 days ago to today; usernames: from 10 days ago.
    floor_traces = await page.evaluate(
        "document.getElementById('floor-chart').data.map(t => [t.name, t.x.length])"
    )
    assert floor_traces == [
        ["Numbers floor", 10],
        ["Numbers median", 10],
        ["Usernames floor", 11],
        ["Usernames median", 11],
    ]
    assert await points_in(page, "volume-chart") == 21
    assert await fits_the_viewport(page)
    await page.screenshot(path=artifacts_dir / f"api-market-{device}.png", full_page=True)

    await asyncio.wait_for(notifier.subscribed.wait(), 10)
    sale = SeedListing(
        Asset.USERNAME,
        "borisov",
        ListingStatus.SOLD,
        Decimal(60),
        NOW - timedelta(days=7),
        changes=[(NOW, EventType.SOLD, ListingStatus.SOLD, Decimal(60))],
    )
    await notifier.push(sale.events()[0])
    await wait_for_live_events(page, "floor-chart", 1)
    today_volume = await page.evaluate(
        "document.getElementById('volume-chart').data[1].y.slice(-1)[0]"
    )
    assert today_volume == 60
    assert errors == []


async def test_pages_work_when_the_notifier_is_unreachable(
    browser: Browser, settings: Settings, mongo_db: AsyncDatabase[dict[str, Any]]
) -> None:
    await seed_market(mongo_db, sample_market())
    nowhere = api_settings(settings, notifier_public_url="ws://127.0.0.1:9/ws")
    async with running_api(nowhere) as url:
        page, errors = await open_page(browser, f"{url}/listing/username/borisov", 1280)
        assert await points_in(page, "chart", trace=0) == 1
        assert await page.locator("#live-status").text_content() == "offline"
    # The only complaint is the browser's own note about the refused socket.
    assert all("WebSocket" in error for error in errors), errors
