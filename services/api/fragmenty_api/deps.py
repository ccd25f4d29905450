"""What route handlers get injected: the current snapshot, the database, the rate limiter."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from pymongo.asynchronous.database import AsyncDatabase

from fragmenty_api.metrics import ApiMetrics
from fragmenty_api.security import TokenBucketLimiter, client_address
from fragmenty_api.settings import ApiSettings
from fragmenty_api.snapshot import MarketSnapshot
from fragmenty_api.snapshot_store import SnapshotStore
from fragmenty_api.stats import MarketStatsReader
from fragmenty_api.valuations import Valuations
from fragmenty_shared.event_log import EventLogReader
from fragmenty_shared.listing_history import ListingHistoryReader


@dataclass
class ApiState:
    """Everything the composition root builds once and the routes share."""

    settings: ApiSettings
    database: AsyncDatabase[dict[str, Any]]
    store: SnapshotStore
    limiter: TokenBucketLimiter
    metrics: ApiMetrics
    event_log: EventLogReader
    history: ListingHistoryReader
    stats: MarketStatsReader
    valuations: Valuations


# Dependencies are ``async def`` on purpose: FastAPI runs plain ``def`` dependencies in a thread
# pool, a thread hop per dependency per request.


async def get_state(request: Request) -> ApiState:
    state: ApiState = request.app.state.api
    return state


State = Annotated[ApiState, Depends(get_state)]


async def get_snapshot(request: Request) -> MarketSnapshot:
    # Straight from the request rather than through get_state: one dependency less to solve
    # on the hottest routes.
    state: ApiState = request.app.state.api
    return await state.store.current()


Snapshot = Annotated[MarketSnapshot, Depends(get_snapshot)]


async def get_valuations(request: Request) -> Valuations:
    state: ApiState = request.app.state.api
    return state.valuations


Valuer = Annotated[Valuations, Depends(get_valuations)]


async def limit_expensive(request: Request, state: State) -> None:
    """Per-client rate limit for export and stats; raises RateLimitExceeded (429)."""
    route = request.scope.get("route")
    try:
        state.limiter.take(client_address(request))
    except Exception:
        state.metrics.rate_limited.labels(getattr(route, "path", "unknown")).inc()
        raise


ExpensiveRequest = Depends(limit_expensive)
