"""The api's composition root: builds the app from settings and owns its lifetime."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from pymongo.asynchronous.database import AsyncDatabase
from starlette.routing import BaseRoute

from fragmenty_api import pages, routes_api, routes_legacy
from fragmenty_api.deps import ApiState
from fragmenty_api.live_updates import LiveUpdates
from fragmenty_api.metrics import ApiMetrics, RequestMetricsMiddleware
from fragmenty_api.security import (
    EXCEPTION_HANDLERS,
    SecurityHeadersMiddleware,
    TokenBucketLimiter,
    content_security_policy,
)
from fragmenty_api.settings import ApiSettings
from fragmenty_api.snapshot_store import SnapshotStore
from fragmenty_api.stats import MarketStatsReader
from fragmenty_api.valuations import Valuations
from fragmenty_shared.api_docs import docs_routes
from fragmenty_shared.event_log import EventLogReader
from fragmenty_shared.listing_history import ListingHistoryReader
from fragmenty_shared.metrics import new_registry
from fragmenty_shared.ops import ops_routes
from fragmenty_shared.storage import make_mongo_client

SERVICE = "fragmenty-api"
TITLE = "Fragmenty API"

DESCRIPTION = """
The whole Fragment market (+888 numbers and usernames), its history and its events.

* TON amounts are exact decimal strings; USD is derived at the rate Fragment showed.
* `/api/v1/listings` pages with an opaque `cursor`; follow `next_cursor` to the end.
* Live events are on the notifier's WebSocket (`/ws`), not here.
"""


def create_app(settings: ApiSettings) -> FastAPI:
    registry = new_registry(SERVICE)
    metrics = ApiMetrics(registry)
    client = make_mongo_client(settings.mongodb_url)
    database: AsyncDatabase[dict[str, Any]] = client[settings.mongodb_database]
    store = SnapshotStore(
        database, refresh_seconds=settings.snapshot_refresh_seconds, metrics=metrics
    )
    state = ApiState(
        settings=settings,
        database=database,
        store=store,
        limiter=TokenBucketLimiter(settings.expensive_requests_per_minute),
        metrics=metrics,
        event_log=EventLogReader(database),
        history=ListingHistoryReader(database),
        stats=MarketStatsReader(database),
        valuations=Valuations(store, refit_seconds=settings.valuation_refit_seconds),
    )

    live_updates = LiveUpdates(settings, store, metrics) if settings.live_updates else None

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if live_updates is not None:
            # Consume first: events that arrive during the first full read are applied after it.
            live_updates.start()
        refresher = asyncio.create_task(store.run(), name="snapshot-refresh")
        # Waits for the snapshot without blocking start-up; fits in a worker thread.
        refitter = asyncio.create_task(state.valuations.run(), name="valuation-refit")
        try:
            yield
        finally:
            for task in (refitter, refresher):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if live_updates is not None:
                await live_updates.stop()
            await client.close()

    async def database_reachable() -> None:
        await database.command("ping")

    async def snapshot_loaded() -> None:
        if not store.loaded:
            raise RuntimeError("market snapshot not loaded yet")

    ops: list[BaseRoute] = [
        *ops_routes(registry, {"database": database_reachable, "snapshot": snapshot_loaded}),
        *docs_routes(TITLE),  # served from the package: the docs work offline, under the CSP
    ]
    app = FastAPI(
        title=TITLE,
        docs_url=None,
        redoc_url=None,
        version="1.0.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        routes=ops,
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
    )
    app.state.api = state
    app.state.live_updates = live_updates
    app.include_router(routes_api.router)
    app.include_router(routes_legacy.router)
    pages.mount(app)
    # Order: the last added runs first. Metrics see every response, headers go on all of them.
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_allow_origins,
        allow_methods=["GET"],
        allow_headers=[],
        max_age=600,
    )
    app.add_middleware(
        SecurityHeadersMiddleware, csp=content_security_policy(settings.notifier_public_url)
    )
    app.add_middleware(RequestMetricsMiddleware, metrics=metrics)
    return app
