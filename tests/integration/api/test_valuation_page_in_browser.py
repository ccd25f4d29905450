"""The listing page in headless Chromium: the fair value's 80 % band behind the price history,
the comparable sales listed, and the band following a live event's estimate."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser
from pymongo.asynchronous.database import AsyncDatabase

from fragmenty_shared.contracts import (
    Asset,
    EventType,
    EventValuation,
    ListingSnapshot,
    ListingStatus,
    PriceEvent,
    make_event_id,
)
from fragmenty_shared.settings import Settings
from fragmenty_simulator.market import Market, SimListing
from tests.integration.api.browser import fits_the_viewport, open_page, wait_for_live_events
from tests.integration.api.conftest import api_settings
from tests.integration.api.live_servers import FakeNotifier, running_api
from tests.integration.api.market_seed import seed_market
from tests.integration.api.test_valuation_routes import simulated_market
from tests.support.processes import wait_until

pytestmark = pytest.mark.slow


async def test_listing_page_draws_the_band_and_lists_the_comparables(
    browser: Browser,
    notifier: FakeNotifier,
    settings: Settings,
    mongo_db: AsyncDatabase[dict[str, Any]],
    artifacts_dir: Path,
) -> None:
    market, seeds = simulated_market()
    await seed_market(mongo_db, seeds)
    target = _listed_with_sales(market)
    async with running_api(api_settings(settings, notifier_public_url=notifier.url)) as site:
        async with httpx.AsyncClient(base_url=site) as client:

            async def fitted() -> bool:
                answer = await client.get(f"/api/v1/valuation/number/{target.slug}")
                return answer.status_code == 200

            await wait_until(fitted, timeout_s=30, what="the first valuation fit")
            valuation = (await client.get(f"/api/v1/valuation/number/{target.slug}")).json()

        page, errors = await open_page(browser, f"{site}/listing/number/{target.slug}", 1280)
        shapes = await page.evaluate("document.getElementById('chart').layout.shapes")
        band, line = shapes
        assert (band["type"], band["layer"]) == ("rect", "below")
        assert band["y0"] == float(valuation["low_ton"])
        assert band["y1"] == float(valuation["high_ton"])
        assert line["y0"] == float(valuation["expected_ton"])
        fair = await page.locator("#fact-fair-value").text_content() or ""
        assert f"{Decimal(valuation['expected_ton']):,}" in fair
        rows = page.locator("#comparables tbody tr")
        assert await rows.count() == len(valuation["comparables"])
        # Listed heaviest first, as the route gives them; the listing's own sales among them
        # (which of its sales or a neighbour's weighs most depends on the simulated market).
        texts = [text or "" for text in await rows.all_text_contents()]
        for text, comparable in zip(texts, valuation["comparables"], strict=True):
            assert comparable["slug"] in text
            assert comparable["why"] in text
        assert any("same listing" in text for text in texts)
        assert await fits_the_viewport(page)
        await page.screenshot(path=artifacts_dir / "api-listing-valuation.png", full_page=True)

        # A live event with a new estimate moves the band without a reload.
        await notifier.subscribed.wait()
        event = _price_event(target.slug, Decimal(100))
        moved = EventValuation(
            fair_value_ton=Decimal(5000),
            low_ton=Decimal(4000),
            high_ton=Decimal(6500),
            discount_pct=98.0,
            confidence=0.5,
        )
        await notifier.push(event.model_copy(update={"valuation": moved}))
        await wait_for_live_events(page, "chart", 1)
        shapes = await page.evaluate("document.getElementById('chart').layout.shapes")
        assert (shapes[0]["y0"], shapes[0]["y1"], shapes[1]["y0"]) == (4000, 6500, 5000)
        assert "98.0 % under" in (await page.locator("#fact-discount").text_content() or "")
        await page.screenshot(path=artifacts_dir / "api-listing-valuation-live.png", full_page=True)
        assert errors == []


def _listed_with_sales(market: Market) -> SimListing:
    return next(
        listing
        for listing in sorted(market.listings.values(), key=lambda x: x.slug)
        if listing.asset.value == "number"
        and listing.status.value == "sale"
        and sum(1 for sale in listing.sales if sale.price_ton is not None) >= 2
    )


def _price_event(slug: str, price: Decimal) -> PriceEvent:
    now = datetime.now(UTC)
    return PriceEvent(
        event_id=make_event_id(Asset.NUMBER, slug, EventType.PRICE_CHANGED, now),
        type=EventType.PRICE_CHANGED,
        asset=Asset.NUMBER,
        slug=slug,
        title=slug,
        occurred_at=now,
        new=ListingSnapshot(status=ListingStatus.SALE, price_ton=price),
    )
