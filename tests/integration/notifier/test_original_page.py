"""The original Fragmenty front end, in headless Chromium, against the real notifier: its page
redraws the chart from each /ws/auctions message, so the chart must hold the whole market after
every change, not just the auction that changed."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import plotly
import pytest
import uvicorn
from faststream.rabbit import RabbitBroker
from playwright.async_api import Browser, Page
from pymongo.asynchronous.database import AsyncDatabase
from starlette.applications import Starlette
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from fragmenty_notifier.legacy import LegacyView
from fragmenty_shared.contracts import EventType, ListingStatus, PriceEvent
from fragmenty_shared.money import from_nanoton, to_nanoton
from fragmenty_shared.settings import Settings
from fragmenty_shared.storage import Collections
from fragmenty_shared.topology import Topology
from tests.support.private_servers import free_port
from tests.unit.notifier.factories import make_event

from .conftest import notifier_settings, publish, running_notifier
from .test_legacy_sockets import number_listing

pytestmark = pytest.mark.slow

PAGE_DIR = Path(__file__).parent / "original_page"
PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


@contextlib.asynccontextmanager
async def original_site() -> AsyncIterator[str]:
    """The original page and its scripts on a local HTTP server (its own plotly.js: the project's
    copy); yields the site's address. A local page may open a socket to a local notifier."""
    files = {
        "/": PAGE_DIR / "index.html",
        "/assets/javascripts/main.js": PAGE_DIR / "main.js",
        "/assets/javascripts/plotly.min.js": PLOTLY_JS,
    }
    routes = [Route(path, lambda _, file=file: FileResponse(file)) for path, file in files.items()]
    routes.append(Route("/favicon.ico", lambda _: Response(status_code=204)))
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(Starlette(routes=routes), host="127.0.0.1", port=port, log_config=None)
    )
    serving = asyncio.create_task(server.serve())
    while not server.started:
        if serving.done():
            serving.result()
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await serving


async def charted(page: Page) -> dict[str, float]:
    """What the chart shows: slug -> minimum bid, as Plotly holds it."""
    points: list[list[Any]] = await page.evaluate(
        """() => {
            const chart = document.getElementById("chart");
            if (!chart.data) return [];
            const trace = chart.data[0];
            return trace.customdata.map((id, i) => [id, trace.y[i]]);
        }"""
    )
    return {slug: float(bid) for slug, bid in points}


async def stored_view(database: AsyncDatabase[dict[str, Any]]) -> dict[str, float]:
    """The /ws/auctions view of the stored market: every +888 auction, running or ended."""
    now = datetime.now(UTC)
    view = {}
    async for listing in database[Collections.LISTINGS].find({"delisted_at": None}):
        ends_at = listing["ends_at"].replace(tzinfo=UTC) if listing["ends_at"] else None
        status = ListingStatus(listing["status"])
        if listing["asset"] == "number" and LegacyView.AUCTIONS.contains(status, ends_at, now):
            view[listing["slug"]] = float(from_nanoton(listing["price_nanoton"]))
    return view


async def record(database: AsyncDatabase[dict[str, Any]], event: PriceEvent) -> None:
    """What ingest does before it publishes an event: the listing updated."""
    listings = database[Collections.LISTINGS]
    if event.type is EventType.DELISTED:
        await listings.update_one(
            {"_id": f"number:{event.slug}"}, {"$set": {"delisted_at": event.occurred_at}}
        )
        return
    assert event.new is not None
    await listings.update_one(
        {"_id": f"number:{event.slug}"},
        {
            "$set": {
                "asset": "number",
                "slug": event.slug,
                "title": event.title,
                "status": event.new.status.value,
                "price_nanoton": to_nanoton(event.new.price_ton),
                "price_usd_cents": None,
                "ends_at": event.new.ends_at,
                "sold_at": event.occurred_at if event.type is EventType.SOLD else None,
                "memorability": None,
                "delisted_at": None,
            }
        },
        upsert=True,
    )


async def wait_until_charted(page: Page, expected: dict[str, float]) -> None:
    shown: dict[str, float] = {}
    for _ in range(100):
        shown = await charted(page)
        if shown == expected:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"the chart shows {shown}, the market is {expected}")


@pytest.fixture
async def original_page(
    settings: Settings,
    broker: RabbitBroker,
    mongo_db: AsyncDatabase[dict[str, Any]],
    browser: Browser,
) -> AsyncIterator[tuple[Page, list[str]]]:
    """A stored market, the notifier, and the original page open on /ws/auctions with its first
    chart drawn; with the page's errors."""
    now = datetime.now(UTC).replace(microsecond=0)
    market = [
        number_listing(f"8880{i:07d}", "auction", now + timedelta(hours=i), 100 + 37 * i)
        for i in range(1, 13)
    ]
    market.append(number_listing("88800000099", "sold", now - timedelta(days=1), 450))
    market.append(number_listing("88800000098", "sale", now + timedelta(days=2), 700))
    await mongo_db[Collections.LISTINGS].insert_many(market)
    async with original_site() as site:
        quick = notifier_settings(
            settings, notifier_allowed_origins=[site], notifier_legacy_interval_s=0.2
        )
        async with running_notifier(quick) as notifier:
            page = await browser.new_page(viewport={"width": 1280, "height": 800})
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.on(
                "console", lambda note: errors.append(note.text) if note.type == "error" else None
            )
            await page.goto(f"{site}/?socket={notifier.url('/ws/auctions')}")
            await wait_until_charted(page, await stored_view(mongo_db))
            yield page, errors
            await page.close()


async def test_the_original_page_charts_the_whole_market_after_every_change(
    original_page: tuple[Page, list[str]],
    broker: RabbitBroker,
    topology: Topology,
    mongo_db: AsyncDatabase[dict[str, Any]],
    artifacts_dir: Path,
) -> None:
    page, errors = original_page
    now = datetime.now(UTC).replace(microsecond=0)
    changes = [
        make_event("88800000003", ends_at=now + timedelta(hours=3), old_price="211", price="250"),
        make_event(
            "88800000044",
            type=EventType.LISTED,
            old_price=None,
            price="333",
            ends_at=now + timedelta(hours=30),
        ),
        make_event(
            "88800000005",
            type=EventType.SOLD,
            old_status=ListingStatus.AUCTION,
            status=ListingStatus.SOLD,
            old_price="285",
            price="300",
            ends_at=now + timedelta(hours=5),
        ),
        make_event(
            "88800000007",
            type=EventType.DELISTED,
            old_price="359",
            price=None,
            ends_at=now + timedelta(hours=7),
        ),
    ]
    for change in changes:
        await record(mongo_db, change)
        await publish(broker, topology, change)
        # After each change the chart is the whole market again, not the one auction.
        await wait_until_charted(page, await stored_view(mongo_db))

    shown = await charted(page)
    assert len(shown) == 13  # 12 auctions and a sold one, one listed, one delisted
    assert (shown["88800000003"], shown["88800000005"], shown["88800000044"]) == (250, 300, 333)
    assert "88800000007" not in shown
    await page.screenshot(path=str(artifacts_dir / "original-page-auctions.png"))
    assert errors == []
