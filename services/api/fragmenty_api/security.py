"""Protections for a public network: security headers, a per-client rate limit, safe errors."""

from __future__ import annotations

import logging
import math
import time
from collections import OrderedDict
from collections.abc import Sequence
from urllib.parse import urlsplit

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fragmenty_api.listing_query import QueryError
from fragmenty_api.snapshot_store import SnapshotUnavailable

logger = logging.getLogger(__name__)


def origin_of(url: str) -> str:
    """``ws://host:port`` of a URL, for a CSP ``connect-src``."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def content_security_policy(notifier_public_url: str) -> str:
    """One policy for every response, the API docs included (their assets are served here)."""
    return (
        "default-src 'self'; script-src 'self'; "
        # Plotly, Swagger UI and ReDoc set inline styles on the elements they draw.
        "style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        # ReDoc's search runs in a worker it builds from its own (same-origin) script.
        "worker-src 'self' blob:; "
        f"connect-src 'self' {origin_of(notifier_public_url)}; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )


class SecurityHeadersMiddleware:
    """Adds the security headers to every HTTP response (pure ASGI: no body buffering)."""

    def __init__(self, app: ASGIApp, *, csp: str) -> None:
        self._app = app
        common = [
            (b"x-content-type-options", b"nosniff"),
            (b"x-frame-options", b"DENY"),
            (b"referrer-policy", b"strict-origin-when-cross-origin"),
            (b"cross-origin-opener-policy", b"same-origin"),
            (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
        ]
        self._headers = [*common, (b"content-security-policy", csp.encode())]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        extra = self._headers

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self._app(scope, receive, send_with_headers)


class RateLimitExceeded(Exception):
    def __init__(self, retry_after_s: float) -> None:
        super().__init__("rate limit exceeded")
        self.retry_after_s = retry_after_s


class TokenBucketLimiter:
    """Per-client token buckets: ``per_minute`` requests a minute, bursts up to the same number.

    Remembers at most ``max_clients`` clients (least recently seen are forgotten), so a flood of
    addresses cannot grow memory without bound.
    """

    def __init__(self, per_minute: int, *, max_clients: int = 10_000) -> None:
        self._capacity = float(per_minute)
        self._refill_per_s = per_minute / 60.0
        self._max_clients = max_clients
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def take(self, client: str, now: float | None = None) -> None:
        """Spend one token or raise :class:`RateLimitExceeded`."""
        now = time.monotonic() if now is None else now
        tokens, last = self._buckets.pop(client, (self._capacity, now))
        tokens = min(self._capacity, tokens + (now - last) * self._refill_per_s)
        if tokens < 1:
            self._buckets[client] = (tokens, now)
            raise RateLimitExceeded((1 - tokens) / self._refill_per_s)
        self._buckets[client] = (tokens - 1, now)
        while len(self._buckets) > self._max_clients:
            self._buckets.popitem(last=False)


def client_address(request: Request) -> str:
    """The peer address (behind a proxy, run uvicorn with --proxy-headers to get the client)."""
    return request.client.host if request.client else "unknown"


def _public_validation_errors(errors: Sequence[object]) -> list[dict[str, object]]:
    """Location, message and type of each error; no echo of the input, no internals."""
    public: list[dict[str, object]] = []
    for error in errors:
        if isinstance(error, dict):
            public.append(
                {
                    "loc": list(error.get("loc", ())),
                    "msg": str(error.get("msg", "invalid value")),
                    "type": str(error.get("type", "value_error")),
                }
            )
    return public


async def on_validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return JSONResponse({"detail": _public_validation_errors(exc.errors())}, status_code=422)


async def on_query_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, QueryError)
    detail = [{"loc": ["query", exc.field], "msg": exc.message, "type": "value_error"}]
    return JSONResponse({"detail": detail}, status_code=422)


async def on_rate_limited(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RateLimitExceeded)
    return JSONResponse(
        {"detail": "too many requests; slow down"},
        status_code=429,
        headers={"Retry-After": str(max(1, math.ceil(exc.retry_after_s)))},
    )


async def on_snapshot_unavailable(_: Request, __: Exception) -> JSONResponse:
    return JSONResponse(
        {"detail": "market data is loading; retry shortly"},
        status_code=503,
        headers={"Retry-After": "5"},
    )


async def on_unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    logger.error("unhandled error on %s", request.url.path, exc_info=exc)
    return JSONResponse({"detail": "internal server error"}, status_code=500)


EXCEPTION_HANDLERS = {
    RequestValidationError: on_validation_error,
    QueryError: on_query_error,
    RateLimitExceeded: on_rate_limited,
    SnapshotUnavailable: on_snapshot_unavailable,
    Exception: on_unexpected_error,
}
