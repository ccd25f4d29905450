"""Retry-After parsing, settings parsing and the item-page selector."""

import time
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest
from scrapy import Request
from scrapy.http import HtmlResponse

from fragmenty_crawler.middlewares import (
    BackoffMiddleware,
    ProxyRotationMiddleware,
    retry_after_seconds,
)
from fragmenty_crawler.prior import ItemPageSelector
from fragmenty_crawler.scrapy_settings import scrapy_settings
from fragmenty_crawler.settings import CrawlerSettings
from fragmenty_crawler.views import ALL_VIEWS, View, parse_views
from fragmenty_shared.contracts import Asset, ListingStatus


def test_retry_after_in_seconds_or_as_an_http_date() -> None:
    assert retry_after_seconds(b"7", now=0.0) == 7.0
    assert retry_after_seconds(b"Thu, 01 Jan 1970 00:00:30 GMT", now=10.0) == pytest.approx(20.0)
    assert retry_after_seconds(b"soon", now=0.0) is None
    assert retry_after_seconds(None, now=0.0) is None


def test_proxies_come_comma_separated_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FRAGMENTY_HTTP_PROXIES", "http://a:1, http://b:2,")
    assert CrawlerSettings().http_proxies == ["http://a:1", "http://b:2"]


def test_polite_settings_are_one_request_at_a_time_at_the_configured_rate() -> None:
    polite = scrapy_settings(CrawlerSettings(crawl_rate=0.5))
    fast = scrapy_settings(CrawlerSettings(politeness=False))

    assert (polite["DOWNLOAD_DELAY"], polite["CONCURRENT_REQUESTS_PER_DOMAIN"]) == (2.0, 1)
    assert polite["AUTOTHROTTLE_ENABLED"] is True
    assert (fast["DOWNLOAD_DELAY"], fast["AUTOTHROTTLE_ENABLED"]) == (0.0, False)
    assert fast["TWISTED_REACTOR_ENABLED"] is False


def test_item_pages_only_for_changed_listings_and_never_beyond_the_cap() -> None:
    prior = {(Asset.NUMBER, "888"): (ListingStatus.SALE, Decimal(10))}
    selector = ItemPageSelector("changed", 2, prior)

    assert not selector.wants(Asset.NUMBER, "888", ListingStatus.SALE, Decimal(10))  # unchanged
    assert selector.wants(Asset.NUMBER, "888", ListingStatus.SALE, Decimal(11))  # price moved
    assert selector.wants(Asset.NUMBER, "999", ListingStatus.SALE, Decimal(1))  # new
    assert not selector.wants(Asset.NUMBER, "777", ListingStatus.SALE, Decimal(1))  # cap reached
    assert not ItemPageSelector("none", 10, {}).wants(
        Asset.NUMBER, "1", ListingStatus.SALE, Decimal(1)
    )


def _crawler(**settings: object) -> Any:
    from scrapy.settings import Settings as ScrapySettings

    return SimpleNamespace(settings=ScrapySettings(settings), spider=None)


async def test_a_429_is_retried_after_its_retry_after_and_pauses_every_request() -> None:
    middleware = BackoffMiddleware(_crawler(FRAGMENTY_MAX_RETRIES=2, FRAGMENTY_MAX_BACKOFF_S=30))
    request = Request("https://fragment.com/numbers")
    limited = HtmlResponse(request.url, status=429, headers={"Retry-After": "7"}, request=request)

    retry = await middleware.process_response(request, limited)

    assert isinstance(retry, Request)
    assert retry.meta["backoff_attempt"] == 1
    assert retry.dont_filter
    assert (
        6.0 < middleware._pause_until - time.monotonic() <= 7.0
    )  # everyone waits, not only this one


async def test_retries_end_and_the_answer_goes_to_the_spider() -> None:
    middleware = BackoffMiddleware(_crawler(FRAGMENTY_MAX_RETRIES=2, FRAGMENTY_MAX_BACKOFF_S=0.01))
    request = Request("https://fragment.com/", meta={"backoff_attempt": 2})
    failing = HtmlResponse(request.url, status=502, request=request)
    fine = HtmlResponse(request.url, status=200, request=request)

    assert await middleware.process_response(request, failing) is failing
    assert await middleware.process_response(request, fine) is fine


def test_proxies_are_used_in_turn() -> None:
    middleware = ProxyRotationMiddleware(["http://a:1", "http://b:2"])
    requests = [Request(f"https://fragment.com/{n}") for n in range(3)]
    for request in requests:
        middleware.process_request(request)
    assert [r.meta["proxy"] for r in requests] == ["http://a:1", "http://b:2", "http://a:1"]
    direct = Request("https://fragment.com/")
    ProxyRotationMiddleware([]).process_request(direct)
    assert "proxy" not in direct.meta


def test_views_from_the_command_line() -> None:
    assert parse_views("number:auction,username") == (
        View(Asset.NUMBER, ListingStatus.AUCTION),
        View(Asset.USERNAME, ListingStatus.AUCTION),
        View(Asset.USERNAME, ListingStatus.SALE),
        View(Asset.USERNAME, ListingStatus.SOLD),
    )
    assert len(ALL_VIEWS) == 6
    with pytest.raises(ValueError, match="gift"):
        parse_views("gift")
