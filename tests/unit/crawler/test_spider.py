"""The spider's decisions on saved responses: what it publishes, requests next, and records."""

import asyncio
import dataclasses
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from unittest.mock import MagicMock

from scrapy import FormRequest, Request
from scrapy.http import HtmlResponse, TextResponse

from fragmenty_crawler.census import CensusReport
from fragmenty_crawler.context import CensusContext, PageItem
from fragmenty_crawler.gate import RequestGate
from fragmenty_crawler.metrics import CrawlerMetrics
from fragmenty_crawler.parsing.listing import parse_listing_page
from fragmenty_crawler.prior import ItemPageSelector
from fragmenty_crawler.scheduler import BudgetScheduler, Decision, FeedSpec, Work
from fragmenty_crawler.spider import CensusSpider
from fragmenty_crawler.views import HeadFeed, View
from fragmenty_shared.contracts import Asset, ListingObserved, ListingStatus
from tests.unit.crawler.fixtures import BASE, fixture

SALE = View(Asset.NUMBER, ListingStatus.SALE)
AUCTION = View(Asset.NUMBER, ListingStatus.AUCTION)


def _spider(item_pages: str = "none", views: tuple[View, ...] = (SALE, AUCTION)) -> CensusSpider:
    context = CensusContext(
        base_url=BASE,
        views=views,
        crawl_id="c1",
        publisher=MagicMock(),  # the spider never publishes: the pipeline does
        metrics=CrawlerMetrics(),
        selector=ItemPageSelector(item_pages, 10, {}),
        report=CensusReport("c1", datetime.now(UTC)),
    )
    return CensusSpider(context)


def _html(url: str, body: str, status: int = 200) -> HtmlResponse:
    return HtmlResponse(
        url, status=status, body=body.encode(), encoding="utf-8", request=Request(url)
    )


def _items(outputs: list[Any]) -> list[PageItem]:
    return [output for output in outputs if isinstance(output, PageItem)]


def test_a_last_page_publishes_its_rows_and_closes_the_view() -> None:
    spider = _spider()
    outputs = list(
        spider.parse_first_page(_html(SALE.page_url(BASE), fixture("numbers_sale.html")), SALE)
    )

    [item] = _items(outputs)
    assert item.final
    assert [o.slug for o in item.observations] == ["88804040404", "88899887766"]
    assert {o.ton_usd_rate for o in item.observations} == {Decimal("1.21735963")}
    assert spider.context.progress[SALE].failures == []


def test_a_page_with_a_cursor_asks_the_api_for_more_in_the_same_session() -> None:
    spider = _spider()
    outputs = list(
        spider.parse_first_page(
            _html(AUCTION.page_url(BASE), fixture("numbers_auction.html")), AUCTION
        )
    )

    [item] = _items(outputs)
    assert not item.final
    [more] = [o for o in outputs if isinstance(o, FormRequest)]
    assert more.url == f"{BASE}/api?hash=f39dfed766153ec875"
    assert b"offset_id=NTAw" in more.body
    assert b"method=searchAuctions" in more.body
    assert more.meta["cookiejar"] == AUCTION.key
    assert more.headers["X-Requested-With"] == b"XMLHttpRequest"


def test_a_truncated_page_closes_the_view_as_incomplete_without_records() -> None:
    spider = _spider()
    page = fixture("numbers_sale.html")
    outputs = list(
        spider.parse_first_page(_html(SALE.page_url(BASE), page[: len(page) // 2]), SALE)
    )

    [item] = _items(outputs)
    assert item.final
    assert item.observations == []
    assert spider.context.progress[SALE].failures[0].startswith("truncated")
    assert spider.context.metrics.parse_failures.labels("truncated")._value.get() == 1


def test_a_cursor_that_comes_back_ends_the_view_as_incomplete() -> None:
    spider = _spider()
    spider.context.progress[AUCTION].seen_cursors.add("MTAwMA")
    answer = TextResponse(
        f"{BASE}/api", body=fixture("search_part.json").encode(), encoding="utf-8"
    )

    outputs = list(spider.parse_more(answer, AUCTION, "h", Decimal(1)))

    assert _items(outputs)[0].final
    assert spider.context.progress[AUCTION].failures[0].startswith("cursor_loop")


def _item_request(spider: CensusSpider) -> tuple[Request, ListingObserved]:
    outputs = list(
        spider.parse_first_page(_html(SALE.page_url(BASE), fixture("numbers_sale.html")), SALE)
    )
    requests = [o for o in outputs if isinstance(o, Request)]
    # The rows go out with their page at once, not after their item pages.
    [page] = _items(outputs)
    assert page.new_rows
    assert [o.slug for o in page.observations] == [
        r.cb_kwargs["observation"].slug for r in requests
    ]
    assert all(o.details is None for o in page.observations)
    return requests[0], requests[0].cb_kwargs["observation"]


def test_a_withdrawn_item_302_sends_nothing_more_and_the_view_waits_for_the_other() -> None:
    spider = _spider(item_pages="all", views=(SALE,))
    request, observation = _item_request(spider)
    assert request.meta["dont_redirect"] is True

    gone = _html(observation.url, "", status=302)
    # The row was published with its page; without details there is nothing to send again.
    assert _items(list(spider.parse_item(gone, SALE, observation))) == []
    assert spider.context.progress[SALE].outstanding_items == 1  # the other row's item page


def test_item_page_histories_are_followed_before_the_row_is_published() -> None:
    spider = _spider(item_pages="all", views=(AUCTION,))
    observation = ListingObserved(
        crawl_id="c1",
        observed_at=datetime.now(UTC),
        asset=Asset.NUMBER,
        slug="88800001234",
        title="+888 0000 1234",
        status=ListingStatus.AUCTION,
        price_ton=Decimal(36645),
        ton_usd_rate=Decimal(1),
        url=f"{BASE}/number/88800001234",
    )
    spider.context.progress[AUCTION].outstanding_items = 1
    spider.context.progress[AUCTION].listing_done = True

    [more] = list(
        spider.parse_item(
            _html(observation.url, fixture("item_number_auction.html")), AUCTION, observation
        )
    )
    assert isinstance(more, FormRequest)
    assert b"method=getOrdersHistory" in more.body
    assert b"offset_id=2" in more.body
    answer = TextResponse(more.url, body=fixture("history_more.json").encode(), encoding="utf-8")
    [item] = _items(list(spider.parse_history(answer, **more.cb_kwargs)))

    assert item.final
    assert not item.new_rows  # the row again, with details: not counted twice in the view
    [published] = item.observations
    assert published.details is not None
    assert published.details.highest_bid_ton == Decimal(34900)
    assert published.details.bid_step_pct == Decimal(5)
    assert [entry.price_ton for entry in published.details.bid_history] == [
        Decimal(34900),
        Decimal(33238),
        Decimal(31000),
        Decimal("29500.5"),
    ]


def test_a_row_seen_again_on_a_later_page_is_not_published_twice() -> None:
    spider = _spider()
    spider.context.progress[AUCTION].seen_slugs.add("crypto")
    answer = TextResponse(
        f"{BASE}/api", body=fixture("search_last_part.json").encode(), encoding="utf-8"
    )
    first = _items(list(spider.parse_more(answer, AUCTION, "h", Decimal(1))))
    assert [o.slug for o in first[0].observations] == ["cryptobot"]

    again = TextResponse(f"{BASE}/api", body=fixture("search_part.json").encode(), encoding="utf-8")
    outputs = list(spider.parse_more(again, AUCTION, "h", Decimal(1)))

    assert [o.slug for o in _items(outputs)[0].observations] == ["wallet"]
    assert spider.context.progress[AUCTION].duplicates == 1


async def test_a_census_page_in_a_heads_order_is_that_heads_read() -> None:
    feed = HeadFeed(Asset.NUMBER, ListingStatus.SALE, "listed")
    spider = _spider(views=(SALE,))
    spider.context.gate = RequestGate(BudgetScheduler([FeedSpec(feed.key, 12.0)]), rate=1.0)
    spider.context.heads = {feed.key: feed}
    spider.context.census_heads = {SALE: feed.key}

    [first] = [request async for request in spider.start()]
    assert first.url == feed.page_url(BASE)  # the census reads the view in the head's order
    assert (first.meta["work"], first.meta["feed"]) == ("census", feed.key)

    page = fixture("numbers_sale.html")
    [item] = _items(list(spider.parse_first_page(_html(first.url, page), SALE)))
    assert len(item.observations) == 2  # the census publishes every row, head or not

    # The census's page was the head's read: the head's next read publishes only what moved
    # since (a head's very first read would publish nothing at all).
    rows = parse_listing_page(page, first.url, BASE, ListingStatus.SALE).rows
    repriced = dataclasses.replace(rows[1], price_ton=rows[1].price_ton + 1)
    assert spider._head_read(feed.key, [rows[0], repriced]) == [repriced]


async def test_a_newest_first_head_is_kept_awake_by_arrivals_not_by_repricing() -> None:
    feed = HeadFeed(Asset.NUMBER, ListingStatus.SALE, "listed")
    scheduler = BudgetScheduler([FeedSpec(feed.key, 12.0, idle_period_s=60.0)], idle_after_s=100)
    spider = _spider(views=(SALE,))
    spider.context.gate = RequestGate(scheduler, rate=1.0)
    spider.context.heads = {feed.key: feed}
    now = asyncio.get_running_loop().time()
    scheduler.granted(Decision(Work.HEAD, feed.key), now - 200.0)  # quiet for 200 s: idle
    rows = parse_listing_page(
        fixture("numbers_sale.html"), feed.page_url(BASE), BASE, ListingStatus.SALE
    ).rows
    spider._head_read(feed.key, rows[:1])

    repriced = dataclasses.replace(rows[0], price_ton=rows[0].price_ton + 1)
    assert spider._head_read(feed.key, [repriced]) == [repriced]  # published...
    assert scheduler.period_s(feed.key, now) == 60.0  # ...but it does not wake the head

    # A row that slid up into the page (a row above it left) is no arrival.
    assert spider._head_read(feed.key, [repriced, rows[1]]) == [rows[1]]
    assert scheduler.period_s(feed.key, now) == 60.0

    arrival = dataclasses.replace(rows[0], slug="88800000001")
    assert spider._head_read(feed.key, [arrival, repriced, rows[1]]) == [arrival]
    assert scheduler.period_s(feed.key, now + 1) == 12.0
