"""/listings in headless Chromium: the table, its filters as form controls with a shareable URL,
keyset paging, sparklines, links, the CSV of the same query, live row updates and bad input."""

from __future__ import annotations

import asyncio
import csv
import io
import math
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from playwright.async_api import Browser, Page
from pymongo.asynchronous.database import AsyncDatabase

from fragmenty_shared.contracts import Asset, EventType, ListingStatus
from fragmenty_shared.money import to_nanoton
from fragmenty_shared.settings import Settings
from fragmenty_shared.storage import Collections
from tests.integration.api.browser import (
    WIDTHS,
    fits_the_viewport,
    open_page,
    wait_for_live_events,
)
from tests.integration.api.conftest import NOW, api_settings, sample_market
from tests.integration.api.live_servers import FakeNotifier, running_api
from tests.integration.api.market_seed import SeedListing, seed_market, title_of

pytestmark = pytest.mark.slow

RECENT = ["1500", "1100", "1250", "900"]


@pytest.fixture
async def with_recent_prices(
    settings: Settings, mongo_db: AsyncDatabase[dict[str, Any]], notifier: FakeNotifier
) -> AsyncIterator[str]:
    """The sample market, with the recent prices ingest keeps on one listing."""
    await seed_market(mongo_db, sample_market())
    await mongo_db[Collections.LISTINGS].update_one(
        {"_id": "number:88800000123"},
        {"$set": {"recent_prices": [to_nanoton(Decimal(p)) for p in RECENT]}},
    )
    async with running_api(api_settings(settings, notifier_public_url=notifier.url)) as url:
        yield url


async def titles(page: Page) -> list[str]:
    cells = await page.locator("#listings tbody td.title a").all_text_contents()
    return [cell.strip() for cell in cells]


def listed() -> list[SeedListing]:
    """What the default query shows: everything not delisted, cheapest first."""
    rows = [listing for listing in sample_market() if listing.delisted_at is None]
    return sorted(rows, key=lambda listing: (listing.price_ton, listing.id))


def titles_of(listings: list[SeedListing]) -> list[str]:
    return [listing.title or title_of(listing.asset, listing.slug) for listing in listings]


@pytest.mark.parametrize("device", list(WIDTHS))
async def test_the_table_shows_the_market_with_sparklines_and_links(
    browser: Browser, site: str, artifacts_dir: Path, device: str
) -> None:
    opened_at = datetime.now(UTC)
    page, errors = await open_page(browser, f"{site}/listings", WIDTHS[device])
    checked_at = datetime.now(UTC)
    expected = listed()
    assert await titles(page) == titles_of(expected)
    rows = page.locator("#listings tbody tr")
    assert await rows.count() == len(expected)
    assert await page.locator("#listings svg.spark circle").count() == len(expected)
    first = rows.first
    cheapest = expected[0]
    assert await first.get_attribute("data-id") == cheapest.id
    assert await first.locator("td.title a").get_attribute("href") == (
        f"/listing/{cheapest.asset.value}/{cheapest.slug}"
    )
    assert await first.locator("td.col-fragment a").get_attribute("href") == (
        f"https://fragment.com/{cheapest.asset.value}/{cheapest.slug}"
    )
    # The number ending in 30 minutes (from when the market was built, at import) says how many
    # minutes are left when the page drew it; sold and open-ended ones say that instead.
    ending_at = next(item.ends_at for item in expected if item.slug == "88800007777")
    assert ending_at is not None
    # math.floor(x + 0.5) rounds as the page's Math.round does.
    minutes_left = {
        f"{math.floor((ending_at - at).total_seconds() / 60 + 0.5)} min left"
        for at in (opened_at, checked_at)
    }
    ending = page.locator('#listings tr[data-id="number:88800007777"] td.time-left')
    assert (await ending.text_content() or "").strip() in minutes_left
    sold = page.locator('#listings tr[data-id="username:crypto"] td.time-left')
    assert (await sold.text_content() or "").strip() == "sold"
    # Scraped text stays text.
    assert "<script>alert(1)</script>" in await titles(page)
    assert await fits_the_viewport(page)
    await page.screenshot(path=artifacts_dir / f"api-listings-{device}.png", full_page=True)
    assert errors == []


async def test_sparkline_draws_the_recent_prices(browser: Browser, with_recent_prices: str) -> None:
    page, _ = await open_page(browser, f"{with_recent_prices}/listings?asset=number", 1280)
    spark = page.locator('#listings tr[data-id="number:88800000123"] svg.spark')
    assert await spark.get_attribute("data-prices") == " ".join(RECENT)
    points = await spark.locator("polyline").get_attribute("points") or ""
    assert len(points.split()) == 4


async def test_filters_are_form_controls_and_the_url_is_shareable(
    browser: Browser, site: str
) -> None:
    page, errors = await open_page(browser, f"{site}/listings", 1280)
    await page.select_option("select[name=asset]", "number")
    await page.fill("input[name=q]", "*7777")
    await page.select_option("select[name=sort]", "price_desc")
    async with page.expect_navigation():
        await page.click("#listing-filters button[type=submit]")
    await page.wait_for_selector("[data-ready='1']")
    assert await titles(page) == ["+888 0000 7777", "+888 1234 7777"]
    query = dict(parse_qsl(urlsplit(page.url).query))
    assert query["asset"] == "number"
    assert query["q"] == "*7777"
    assert query["sort"] == "price_desc"
    # The same URL in a fresh page gives the same table and the same form.
    shared, _ = await open_page(browser, page.url, 1280)
    assert await titles(shared) == ["+888 0000 7777", "+888 1234 7777"]
    assert await shared.input_value("input[name=q]") == "*7777"
    assert await shared.input_value("select[name=sort]") == "price_desc"

    # Tags, memorability, ending and delisted are controls too.
    await shared.check("input[name=include_delisted]")
    await shared.fill("input[name=q]", "")
    await shared.fill("input[name=ending_within]", "6h")
    async with shared.expect_navigation():
        await shared.click("#listing-filters button[type=submit]")
    assert await titles(shared) == ["+888 0000 7777", "+888 1234 7777"]
    assert "q=" not in shared.url  # empty fields leave the URL alone
    assert errors == []


async def test_keyset_paging_walks_the_whole_market(browser: Browser, site: str) -> None:
    page, _ = await open_page(browser, f"{site}/listings?limit=4", 1280)
    seen: list[str] = []
    for _ in range(10):
        seen.extend(await titles(page))
        following = page.locator("#next-page")
        if await following.count() == 0:
            break
        async with page.expect_navigation():
            await following.click()
        await page.wait_for_selector("[data-ready='1']")
        assert "cursor=" in page.url
        assert await page.locator("text=« First page").count() == 1
    assert seen == titles_of(listed())
    assert len(seen) == len(set(seen)) == len(listed())


async def test_download_csv_is_the_same_query(browser: Browser, site: str) -> None:
    page, _ = await open_page(browser, f"{site}/listings?asset=username&sort=price_desc", 1280)
    href = await page.locator("#csv-link").get_attribute("href")
    assert href is not None
    assert href.startswith("/api/v1/export.csv?")
    async with httpx.AsyncClient(base_url=site) as client:
        export = await client.get(href)
    assert export.status_code == 200
    slugs = [row["slug"] for row in csv.DictReader(io.StringIO(export.text))]
    on_page = await page.locator("#listings tbody tr").evaluate_all(
        "rows => rows.map(r => r.dataset.slug)"
    )
    assert slugs == on_page == ["crypto", "boris", "borisov", "evil"]


async def test_rows_follow_live_events(browser: Browser, site: str, notifier: FakeNotifier) -> None:
    page, errors = await open_page(browser, f"{site}/listings?asset=number", 1280)
    await asyncio.wait_for(notifier.subscribed.wait(), 10)
    assert notifier.subscriptions[-1][2] == {"assets": ["number"]}
    cheaper = SeedListing(
        Asset.NUMBER,
        "88800000123",
        ListingStatus.SALE,
        Decimal(850),
        NOW - timedelta(days=3),
        ends_at=NOW + timedelta(days=10),
        changes=[(NOW, EventType.PRICE_CHANGED, ListingStatus.SALE, Decimal(850))],
    )
    await notifier.push(cheaper.events()[0])
    await wait_for_live_events(page, "listings", 1)
    row = page.locator('#listings tr[data-id="number:88800000123"]')
    assert (await row.locator("td.price").text_content() or "").strip() == "850"
    assert await row.locator("svg.spark").get_attribute("data-prices") == "900 850"
    assert await row.locator("svg.spark polyline").count() == 1
    assert await page.locator("#live-status").text_content() == "live"
    assert errors == []


async def test_bad_input_is_named_and_the_form_kept(browser: Browser, site: str) -> None:
    page = await browser.new_page()
    response = await page.goto(f"{site}/listings?min_price=abc&q=*7777&ending_within=soon")
    assert response is not None
    assert response.status == 422
    problems = await page.locator("#problems li").all_text_contents()
    assert any(problem.startswith("min_price") for problem in problems), problems
    assert await page.input_value("input[name=q]") == "*7777"
    assert await page.locator("#listings tbody tr").count() == 0
