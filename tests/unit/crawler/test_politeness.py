"""Retry-After parsing, settings parsing and the item-page selector."""

from decimal import Decimal

import pytest

from fragmenty_crawler.middlewares import retry_after_seconds
from fragmenty_crawler.prior import ItemPageSelector
from fragmenty_crawler.scrapy_settings import scrapy_settings
from fragmenty_crawler.settings import CrawlerSettings
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
