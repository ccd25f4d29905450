"""The request gate's bookkeeping around heads, with the spider that makes their requests."""

import asyncio
from datetime import UTC, datetime
from unittest.mock import MagicMock

from fragmenty_crawler.census import CensusReport
from fragmenty_crawler.context import CensusContext
from fragmenty_crawler.gate import RequestGate
from fragmenty_crawler.metrics import CrawlerMetrics
from fragmenty_crawler.prior import ItemPageSelector
from fragmenty_crawler.scheduler import BudgetScheduler, FeedSpec, Work
from fragmenty_crawler.spider import CensusSpider
from fragmenty_crawler.views import HeadFeed, View
from fragmenty_shared.contracts import Asset, ListingStatus
from tests.unit.crawler.fixtures import BASE

FEED = HeadFeed(Asset.NUMBER, ListingStatus.AUCTION, "listed")


async def test_a_head_whose_request_cannot_be_made_gives_back_its_slot_and_ticket() -> None:
    # One slot per 100 s: after the head's slot, nothing else is let through during the test.
    gate = RequestGate(BudgetScheduler([FeedSpec(FEED.key, 600.0)]), rate=0.01)
    context = CensusContext(
        base_url=BASE,
        views=(View(Asset.NUMBER, ListingStatus.AUCTION),),
        crawl_id="c1",
        publisher=MagicMock(),
        metrics=CrawlerMetrics(),
        selector=ItemPageSelector("none", 10, {}),
        report=CensusReport("c1", datetime.now(UTC)),
        gate=gate,
        heads={FEED.key: FEED},
    )
    spider = CensusSpider(context)
    spider.crawler = MagicMock()
    spider.crawler.engine.crawl.side_effect = RuntimeError("the crawl is closing")
    head_tried = asyncio.Event()

    def schedule_head(key: str) -> None:
        spider._schedule_head(key)
        head_tried.set()

    gate.on_head = schedule_head
    running = asyncio.create_task(gate.run())
    try:
        await asyncio.wait_for(head_tried.wait(), 5)
        spider.crawler.engine.crawl.assert_called_once()
        assert gate.granted[Work.HEAD] == 1

        # A request of that feed arriving now was never granted a slot: it waits for one
        # instead of passing on the ticket of the head that was never made.
        late = asyncio.create_task(gate.admit(Work.HEAD, FEED.key))
        for _ in range(20):
            await asyncio.sleep(0)
        assert not late.done()
        late.cancel()
    finally:
        running.cancel()
