"""Scrapy's settings for a census, derived from :class:`CrawlerSettings`.

Scrapy runs without a Twisted reactor (``TWISTED_REACTOR_ENABLED = False``, Scrapy 2.19),
straight on the asyncio loop that also runs the broker client and the ops server: one loop, one
process, and tests and benchmarks can drive a census in-process.
"""

from __future__ import annotations

from typing import Any

from fragmenty_crawler.settings import CrawlerSettings

BROWSER_HEADERS = {
    "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8",
    "Accept-Language": "en-US,en;q=0.9",
    "Cache-Control": "no-cache",
}
# What Fragment's own page script sends with an API call (plus Origin and Referer).
XHR_HEADERS = {
    "X-Requested-With": "XMLHttpRequest",
    "Accept": "application/json, text/javascript, */*; q=0.01",
}


def scrapy_settings(settings: CrawlerSettings, *, gated: bool = False) -> dict[str, Any]:
    """``gated``: a ``RequestGate`` spaces the requests (one in flight, ``crawl_rate`` per
    second) instead of Scrapy's delay, so several requests may wait for it at once."""
    polite = settings.politeness and not gated
    delay = 1.0 / settings.crawl_rate
    # Gated: requests waiting in the gate hold a downloader slot, and a head granted by the
    # gate must always find one free, so the slots are many (the gate still lets one through).
    parallel = 256 if gated else 1 if polite else 16
    return {
        "TWISTED_REACTOR_ENABLED": False,
        "TELNETCONSOLE_ENABLED": False,
        "REMOTE_CONTROL_ENABLED": False,
        "LOGSTATS_INTERVAL": 0,
        "STATS_DUMP": False,
        "USER_AGENT": settings.user_agent,
        "DEFAULT_REQUEST_HEADERS": BROWSER_HEADERS,
        "COOKIES_ENABLED": True,  # stel_ssid: the API refuses a request without the session
        "ROBOTSTXT_OBEY": False,
        "DOWNLOAD_DELAY": delay if polite else 0.0,
        "DOWNLOAD_DELAY_JITTER": 0.5 if polite else 0.0,
        "CONCURRENT_REQUESTS": parallel,
        "CONCURRENT_REQUESTS_PER_DOMAIN": parallel,
        "AUTOTHROTTLE_ENABLED": polite,
        "AUTOTHROTTLE_START_DELAY": delay,
        "AUTOTHROTTLE_TARGET_CONCURRENCY": 1.0,
        "AUTOTHROTTLE_MAX_DELAY": settings.max_backoff_s,
        "DOWNLOAD_TIMEOUT": settings.request_timeout_s,
        # HTTP answers (429, 5xx) are retried by BackoffMiddleware; Scrapy's own retry keeps
        # only network errors (timeouts, resets).
        "RETRY_ENABLED": True,
        "RETRY_HTTP_CODES": [],
        "RETRY_TIMES": 3,
        "DOWNLOADER_MIDDLEWARES": {
            "fragmenty_crawler.middlewares.BackoffMiddleware": 560,
            "fragmenty_crawler.middlewares.GateMiddleware": 570,
            "fragmenty_crawler.middlewares.ProxyRotationMiddleware": 740,
        },
        "ITEM_PIPELINES": {"fragmenty_crawler.pipeline.PublishPipeline": 300},
        "FRAGMENTY_MAX_RETRIES": settings.max_retries,
        "FRAGMENTY_MAX_BACKOFF_S": settings.max_backoff_s,
        "FRAGMENTY_HTTP_PROXIES": settings.http_proxies,
        "LOG_LEVEL": "WARNING",
    }
