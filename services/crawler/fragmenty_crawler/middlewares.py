"""Downloader middlewares: polite retries (429 with ``Retry-After``, 5xx with backoff), proxies."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from email.utils import parsedate_to_datetime
from typing import Any

from scrapy import Request
from scrapy.crawler import Crawler
from scrapy.http import Response

from fragmenty_crawler.scheduler import Work

logger = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504, 522, 524})
BASE_BACKOFF_S = 1.0


def retry_after_seconds(value: bytes | None, now: float) -> float | None:
    """``Retry-After`` as seconds: either a number of seconds or an HTTP date."""
    if not value:
        return None
    text = value.decode("latin-1").strip()
    if text.isdigit():
        return float(text)
    try:
        return max(0.0, parsedate_to_datetime(text).timestamp() - now)
    except (TypeError, ValueError):
        return None


class BackoffMiddleware:
    """Retries 429 and 5xx answers, and pauses *every* request while the site asks for it.

    A 429 means the whole site wants us to slow down, so its ``Retry-After`` (or, without one,
    an exponential backoff) holds back all requests, not only the one that got it. After
    ``FRAGMENTY_MAX_RETRIES`` the answer goes through to the spider, whose errback fails the view.
    """

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.max_retries: int = crawler.settings.getint("FRAGMENTY_MAX_RETRIES", 8)
        self.max_backoff: float = crawler.settings.getfloat("FRAGMENTY_MAX_BACKOFF_S", 120.0)
        self._pause_until = 0.0

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> BackoffMiddleware:
        return cls(crawler)

    async def process_request(self, request: Request) -> None:
        delay = self._pause_until - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)

    async def process_response(self, request: Request, response: Response) -> Request | Response:
        if response.status not in RETRY_STATUSES or request.meta.get("dont_retry"):
            return response
        attempt: int = request.meta.get("backoff_attempt", 0)
        if attempt >= self.max_retries:
            logger.warning(
                "giving up on %s after %d retries (HTTP %d)", request.url, attempt, response.status
            )
            return response
        asked = retry_after_seconds(response.headers.get(b"Retry-After"), time.time())
        delay = min(self.max_backoff, asked if asked is not None else BASE_BACKOFF_S * 2**attempt)
        self._pause_until = max(self._pause_until, time.monotonic() + delay)
        context = getattr(self.crawler.spider, "context", None)
        if context is not None:
            context.metrics.retries.labels(str(response.status)).inc()
        logger.info(
            "HTTP %d for %s: waiting %.1fs before retry %d",
            response.status,
            request.url,
            delay,
            attempt + 1,
        )
        retry: Request = request.replace(dont_filter=True)
        retry.meta["backoff_attempt"] = attempt + 1
        return retry


class GateMiddleware:
    """A scheduled census's requests wait for their slot in the spider's ``RequestGate``.

    Ordered after ``BackoffMiddleware`` on the way out, so every answer (a retried one too)
    passes here first on the way back and frees the gate for the next request.
    """

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> GateMiddleware:
        return cls(crawler)

    def _gate(self) -> Any:
        context = getattr(self.crawler.spider, "context", None)
        return getattr(context, "gate", None)

    async def process_request(self, request: Request) -> None:
        gate = self._gate()
        if gate is not None:
            await gate.admit(Work(request.meta.get("work", "census")), request.meta.get("feed"))

    def process_response(self, request: Request, response: Response) -> Response:
        gate = self._gate()
        if gate is not None:
            gate.done()
        return response

    def process_exception(self, request: Request, exception: Exception) -> None:
        gate = self._gate()
        if gate is not None:
            gate.done()


class ProxyRotationMiddleware:
    """Sends each request through the next proxy of ``FRAGMENTY_HTTP_PROXIES`` (if any)."""

    def __init__(self, proxies: list[str]) -> None:
        self._proxies = itertools.cycle(proxies) if proxies else None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ProxyRotationMiddleware:
        return cls(list(crawler.settings.getlist("FRAGMENTY_HTTP_PROXIES")))

    def process_request(self, request: Request) -> Any:
        if self._proxies is not None and "proxy" not in request.meta:
            request.meta["proxy"] = next(self._proxies)
        return None
