"""Composition root: settings -> metrics, database, hub, broker consumer, routes, server."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.types import ASGIApp

from fragmenty_notifier.admission import SharedCounts
from fragmenty_notifier.connection import ConnectionLimits
from fragmenty_notifier.consumer import EventConsumer
from fragmenty_notifier.event_store import EventStore
from fragmenty_notifier.garbage import ConnectionFreezer, settle_collector
from fragmenty_notifier.hub import Hub
from fragmenty_notifier.legacy import LegacyLists, LegacyView
from fragmenty_notifier.metrics import NotifierMetrics, create_metrics
from fragmenty_notifier.outbox import RawSendMiddleware
from fragmenty_notifier.server import NotifierServer
from fragmenty_notifier.settings import NotifierSettings
from fragmenty_notifier.sockets import OriginPolicy, SocketEndpoints
from fragmenty_notifier.worker_metrics import WorkerMetrics
from fragmenty_shared import http_server
from fragmenty_shared.logs import configure_logging
from fragmenty_shared.metrics import METRICS_CONTENT_TYPE, render
from fragmenty_shared.ops import ReadinessCheck, ops_routes
from fragmenty_shared.storage import make_mongo_client

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Notifier:
    """The assembled service; tests and benchmarks reach its parts through this."""

    settings: NotifierSettings
    app: ASGIApp
    hub: Hub
    consumer: EventConsumer
    metrics: NotifierMetrics
    legacy_lists: LegacyLists


@dataclass(frozen=True)
class WorkerPlace:
    """Where a worker process sits among those sharing the port (``workers.py``)."""

    index: int
    workers: int
    counts_table: Any  # admission.shared_table
    peers: Any  # worker_metrics.peer_table
    metrics_dir: Path


def build_notifier(settings: NotifierSettings, place: WorkerPlace | None = None) -> Notifier:
    metrics = create_metrics()
    mongo = make_mongo_client(settings.mongodb_url)
    store = EventStore(mongo[settings.mongodb_database])
    hub = Hub(
        metrics,
        max_connections=settings.notifier_max_connections,
        max_per_client=settings.notifier_max_connections_per_client,
        counts=SharedCounts(place.counts_table, place.workers, place.index) if place else None,
    )
    legacy_lists = LegacyLists(store, settings.notifier_legacy_interval_s)
    hub.observe(legacy_lists.observe)
    consumer = EventConsumer(settings, hub, store, metrics)
    limits = ConnectionLimits(
        send_buffer_bytes=settings.notifier_send_buffer_bytes,
        max_subscriptions=settings.notifier_max_subscriptions,
        max_client_errors=settings.notifier_max_client_errors,
        max_client_frames_per_s=settings.notifier_max_client_frames_per_s,
        max_replay_events=settings.notifier_max_replay_events,
    )
    endpoints = SocketEndpoints(
        hub,
        store,
        metrics,
        limits,
        OriginPolicy.of(settings.notifier_allowed_origins, settings.notifier_allow_missing_origin),
        legacy_lists,
        worker=place.index if place else None,
    )
    # With workers, a scrape of any of them answers for all (worker_metrics.py).
    shared_metrics = (
        WorkerMetrics(metrics.registry, place.metrics_dir, place.index, place.peers, place.workers)
        if place
        else None
    )

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        consumer.start()
        legacy_lists.start()
        writer = (
            asyncio.create_task(shared_metrics.run(consumer.is_consuming))
            if shared_metrics
            else None
        )
        try:
            yield
        finally:
            if writer is not None:
                writer.cancel()
            await legacy_lists.stop()
            await consumer.stop()
            await mongo.close()

    checks = {"broker": consumer.check_ready, "database": store.ping}
    ops = ops_routes(metrics.registry, checks)
    if shared_metrics is not None:
        ops = worker_ops_routes(
            shared_metrics, {**checks, "workers": shared_metrics.check_all_ready}
        )
    routes: list[BaseRoute] = [
        WebSocketRoute("/ws", endpoints.stream),
        *(WebSocketRoute(f"/ws/{view.value}", endpoints.legacy(view)) for view in LegacyView),
        *ops,
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    return Notifier(settings, RawSendMiddleware(app), hub, consumer, metrics, legacy_lists)


def worker_ops_routes(
    shared_metrics: WorkerMetrics, checks: dict[str, ReadinessCheck]
) -> list[Route]:
    """The ops routes of a worker: readiness of every worker, and metrics of every worker
    (asked for fresh figures first)."""

    async def machine_metrics(_: Request) -> Response:
        await shared_metrics.refresh_peers()
        return Response(render(shared_metrics.exposed), media_type=METRICS_CONTENT_TYPE)

    routes = [
        route for route in ops_routes(shared_metrics.exposed, checks) if route.path != "/metrics"
    ]
    return [*routes, Route("/metrics", machine_metrics, methods=["GET"])]


def server_config(notifier: Notifier) -> uvicorn.Config:
    settings = notifier.settings
    return http_server.server_config(
        notifier.app,
        settings,
        port=settings.notifier_port,
        # The sansio protocol lets the notifier write pre-encoded frames straight to each
        # socket (see outbox.py); the legacy "websockets" protocol is deprecated in uvicorn.
        ws=settings.notifier_ws_protocol,
        ws_max_size=settings.notifier_max_frame_bytes,
        ws_ping_interval=settings.notifier_ping_interval_s,
        ws_ping_timeout=settings.notifier_ping_timeout_s,
        # Compressing every frame for every client costs more CPU than the bytes are worth.
        ws_per_message_deflate=False,
        proxy_headers=True,
        forwarded_allow_ips=settings.notifier_forwarded_allow_ips,
        lifespan="on",
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=10,
    )


def build_server(notifier: Notifier, *, handle_signals: bool = True) -> NotifierServer:
    return NotifierServer(server_config(notifier), notifier.hub, handle_signals=handle_signals)


async def serve(
    settings: NotifierSettings,
    place: WorkerPlace | None = None,
    sockets: list[socket.socket] | None = None,
) -> None:
    """Serve one process: the whole notifier, or one worker on ``sockets`` bound with the
    others (``workers.py``)."""
    configure_logging("notifier", level=settings.log_level, json_lines=settings.log_json)
    notifier = build_notifier(settings, place)
    settle_collector(notifier.metrics.gc_pauses)
    freezer = asyncio.create_task(ConnectionFreezer(notifier.hub).run(), name="gc-freezer")
    logger.info(
        "notifier%s on %s:%d, queue %s",
        f" worker {place.index}" if place else "",
        settings.host,
        settings.notifier_port,
        notifier.consumer.queue_name,
    )
    try:
        await build_server(notifier).serve(sockets)
    finally:
        freezer.cancel()
