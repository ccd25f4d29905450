"""The api's Prometheus metrics, created against the registry its composition root makes."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fragmenty_shared.metrics import LATENCY_BUCKETS


class ApiMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "fragmenty_api_requests",
            "HTTP requests answered, by route template, method and status.",
            ["route", "method", "status"],
            registry=registry,
        )
        self.request_seconds = Histogram(
            "fragmenty_api_request_seconds",
            "Time to answer an HTTP request, by route template, method and status.",
            ["route", "method", "status"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.rate_limited = Counter(
            "fragmenty_api_rate_limited",
            "Requests refused by the per-client limit on expensive endpoints.",
            ["route"],
            registry=registry,
        )
        self.snapshot_listings = Gauge(
            "fragmenty_api_snapshot_listings",
            "Listings in the in-memory market snapshot.",
            registry=registry,
        )
        self.snapshot_loaded_at = Gauge(
            "fragmenty_api_snapshot_loaded_timestamp_seconds",
            "When the current market snapshot was read from the database (Unix time).",
            registry=registry,
        )
        self.snapshot_load_seconds = Histogram(
            "fragmenty_api_snapshot_load_seconds",
            "Time to read and index the market snapshot.",
            buckets=(*LATENCY_BUCKETS, 30.0, 60.0),
            registry=registry,
        )
        self.live_events = Counter(
            "fragmenty_api_live_events",
            "Price events applied to the snapshot as they arrived from the broker.",
            registry=registry,
        )
        self.live_updates_connected = Gauge(
            "fragmenty_api_live_updates_connected",
            "1 while the api consumes price events from the broker, else 0.",
            registry=registry,
        )
        self.snapshot_failures = Counter(
            "fragmenty_api_snapshot_load_failures",
            "Snapshot reloads that failed (the previous snapshot stays in use).",
            registry=registry,
        )


class RequestMetricsMiddleware:
    """Counts and times every HTTP request by route template (``/api/v1/listings/{asset}/{slug}``),
    never by raw path, so the label set stays bounded whatever clients send."""

    def __init__(self, app: ASGIApp, *, metrics: ApiMetrics) -> None:
        self._app = app
        self._metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self._app(scope, receive, record_status)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            labels = (template, scope["method"], str(status))
            self._metrics.requests.labels(*labels).inc()
            self._metrics.request_seconds.labels(*labels).observe(time.perf_counter() - started)
