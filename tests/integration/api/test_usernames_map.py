"""/usernames in headless Chromium: every current username a point at its length, modes,
live updates, a click opens the listing, and both widths read (screenshots in artifacts/)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from playwright.async_api import Browser

from fragmenty_shared.contracts import Asset, ListingStatus
from tests.integration.api.browser import (
    WIDTHS,
    fits_the_viewport,
    open_page,
    points_in,
    wait_for_live_events,
)
from tests.integration.api.conftest import NOW
from tests.integration.api.live_servers import FakeNotifier
from tests.integration.api.market_seed import SeedListing

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("device", list(WIDTHS))
async def test_usernames_map_places_each_name_at_its_length_and_updates_live(
    browser: Browser, site: str, notifier: FakeNotifier, artifacts_dir: Path, device: str
) -> None:
    page, errors = await open_page(browser, f"{site}/usernames", WIDTHS[device])
    # On the market now: @boris (auction), @borisov and the <script> one (for sale).
    assert await points_in(page, "chart") == 3
    xs = await page.evaluate(
        "document.getElementById('chart').data.flatMap(t => Array.from(t.x)).sort()"
    )
    lengths = sorted([len("boris"), len("borisov"), len("evil")])
    assert [round(x) for x in xs] == lengths
    assert all(abs(x - round(x)) <= 0.3 for x in xs)
    title = await page.evaluate("document.getElementById('chart').layout.xaxis.title.text")
    assert title == "Length (characters)"
    assert await page.locator("nav a[aria-current=page]").text_content() == "Usernames map"
    assert await fits_the_viewport(page)
    await page.screenshot(path=artifacts_dir / f"api-usernames-map-{device}.png", full_page=True)

    await asyncio.wait_for(notifier.subscribed.wait(), 10)
    assert notifier.subscriptions[-1][2] == {"assets": ["username"]}
    newcomer = SeedListing(
        Asset.USERNAME,
        "newcomer",
        ListingStatus.AUCTION,
        Decimal(33),
        NOW,
        ends_at=NOW + timedelta(hours=5),
    )
    await notifier.push(newcomer.events()[0])
    await wait_for_live_events(page, "chart", 1)
    assert await points_in(page, "chart") == 4
    assert errors == []


async def test_usernames_map_modes_filters_and_click(browser: Browser, site: str) -> None:
    everything, _ = await open_page(browser, f"{site}/usernames?mode=all", 1280)
    assert await points_in(everything, "chart") == 4
    past, _ = await open_page(browser, f"{site}/usernames?mode=past", 1280)
    assert await points_in(past, "chart") == 1  # @crypto, sold
    page, _ = await open_page(browser, f"{site}/usernames?q=boris&status=auction", 1280)
    assert await points_in(page, "chart") == 1
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
    assert "@boris" in (await hover.text_content() or "")
    async with page.expect_navigation():
        await page.mouse.click(x, y)
    assert page.url.endswith("/listing/username/boris")
