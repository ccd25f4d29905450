"""Composition root: settings -> store, directory, senders, deliveries, processor, broker, app.

Start-up never waits for RabbitMQ or the database: connecting, loading rules and the periodic
work (reloading changed rules, picking up due retries, sending digests, pruning) run as
background tasks, and ``/readyz`` says when the service is really ready.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import uvicorn
from fastapi import FastAPI
from faststream.rabbit import RabbitBroker

from fragmenty_alerts.accounts import Accounts
from fragmenty_alerts.api import build_api
from fragmenty_alerts.bot import TelegramBot
from fragmenty_alerts.channels import ChannelKind, Sender
from fragmenty_alerts.channels.apprise_url import AppriseSender
from fragmenty_alerts.channels.telegram_chat import TelegramSender
from fragmenty_alerts.channels.webhook import WebhookSender
from fragmenty_alerts.consumer import build_router
from fragmenty_alerts.delivery import Deliveries
from fragmenty_alerts.delivery_log import Archiver
from fragmenty_alerts.directory import Directory
from fragmenty_alerts.gates import CHAIN_WINDOW
from fragmenty_alerts.metrics import AlertsMetrics, create_metrics
from fragmenty_alerts.processor import EventProcessor
from fragmenty_alerts.settings import AlertsSettings
from fragmenty_alerts.ssrf import SsrfPolicy
from fragmenty_alerts.store import AlertsStore
from fragmenty_shared.broker import connect_with_retries, make_broker
from fragmenty_shared.http_server import server_config
from fragmenty_shared.logs import configure_logging
from fragmenty_shared.ops import ops_routes
from fragmenty_shared.storage import make_mongo_client
from fragmenty_shared.topology import Topology

logger = logging.getLogger(__name__)

PRUNE_EVERY_S = 600.0
# Archiving rounds: a slot of the recent log is archived at most this long after it settled.
ARCHIVE_EVERY_S = 10.0
RETRY_S = 2.0


@dataclass
class AlertsService:
    """The assembled service; tests and benchmarks reach its parts through this."""

    settings: AlertsSettings
    app: FastAPI
    broker: RabbitBroker
    store: AlertsStore
    directory: Directory
    processor: EventProcessor
    deliveries: Deliveries
    metrics: AlertsMetrics
    bot: TelegramBot | None
    consuming: asyncio.Event = field(default_factory=asyncio.Event)
    # One round of the periodic pruning (links, slots, claims, the log, feeds, forgotten pairs).
    prune: Callable[[], Awaitable[None]] = field(default=lambda: _nothing())


async def _every(seconds: float, work: Callable[[], Awaitable[object]], what: str) -> None:
    while True:
        try:
            await work()
        except Exception as error:  # the database may be away; try again next round
            logger.warning("%s failed: %r", what, error)
        await asyncio.sleep(seconds)


def build_alerts(settings: AlertsSettings) -> AlertsService:
    metrics = create_metrics()
    topology = Topology(settings.namespace)
    mongo = make_mongo_client(settings.mongodb_url)
    store = AlertsStore(mongo[settings.mongodb_database])
    directory = Directory(store)
    accounts = Accounts(store)
    ssrf = SsrfPolicy.of(settings.alerts_ssrf_allowlist)
    webhooks = WebhookSender(
        ssrf,
        timeout_s=settings.alerts_delivery_timeout_s,
        connections=settings.alerts_http_connections,
    )
    token = settings.telegram_token()
    bot = TelegramBot(settings, token, store, directory, accounts) if token else None
    senders: dict[ChannelKind, Sender] = {
        ChannelKind.WEBHOOK: webhooks,
        ChannelKind.APPRISE: AppriseSender(ssrf, settings.alerts_delivery_timeout_s),
        ChannelKind.TELEGRAM: TelegramSender(bot.bot if bot else None),
    }
    deliveries = Deliveries(store, directory, senders, settings, metrics)
    processor = EventProcessor(store, directory, deliveries, settings, metrics)
    broker = make_broker(settings, prefetch=settings.alerts_prefetch)
    broker.include_router(build_router(processor, topology))
    consuming = asyncio.Event()

    async def start_broker() -> None:
        await broker.start()
        dead_letter = await broker.declare_exchange(topology.dead_letter_exchange)
        dlq = await broker.declare_queue(topology.alerts_dead_letter_queue)
        await dlq.bind(dead_letter, routing_key=topology.alerts_dead_letter_queue_name)
        consuming.set()
        logger.info("alerts: consuming %s", topology.alerts_queue.name)

    async def discard_broker() -> None:
        with contextlib.suppress(Exception):
            await broker.stop()

    async def load() -> None:
        await store.ensure_indexes()
        await directory.refresh()
        settle_heap()
        await processor.chains.load_disarmed()
        metrics.rules.set(len(directory.index))

    async def refresh() -> None:
        if await directory.refresh():
            settle_heap()
            metrics.rules.set(len(directory.index))
        await processor.chains.load_disarmed()

    async def prune() -> None:
        now = datetime.now(UTC)
        await store.links.delete_many({"at": {"$lt": now - CHAIN_WINDOW}})
        await store.slots.delete_many({"at": {"$lt": now - CHAIN_WINDOW}})
        await store.attempts.delete_many({"at": {"$lt": now - CHAIN_WINDOW}})
        retention = now - timedelta(days=settings.alerts_delivery_retention_days)
        await store.delivery_archive.delete_many({"last": {"$lt": retention}})
        await store.feed.delete_many({"at": {"$lt": retention}})
        if directory.loaded:  # an unknown rule means a deleted one only once the rules are read
            await processor.chains.forget(directory.index.get, now)

    archiver = Archiver(store)

    async def archive_log() -> None:
        await archiver.round(datetime.now(UTC))

    async def background() -> None:
        await connect_with_retries(load, _nothing, what="alerts: loading rules", retry_s=RETRY_S)
        tasks = [
            asyncio.create_task(
                connect_with_retries(
                    start_broker, discard_broker, what="alerts: broker", retry_s=RETRY_S
                )
            ),
            asyncio.create_task(
                _every(settings.alerts_rules_refresh_s, refresh, "reloading rules")
            ),
            asyncio.create_task(
                _every(settings.alerts_delivery_poll_s, deliveries.poll_once, "delivery poll")
            ),
            asyncio.create_task(
                _every(settings.alerts_delivery_poll_s, processor.flush_digests, "digests")
            ),
            asyncio.create_task(_every(PRUNE_EVERY_S, prune, "pruning")),
            asyncio.create_task(_every(ARCHIVE_EVERY_S, archive_log, "archiving the log")),
        ]
        if bot is not None:
            tasks.append(asyncio.create_task(bot.run(), name="telegram bot"))
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def broker_ready() -> None:
        if not consuming.is_set():
            raise RuntimeError("not consuming the alerts queue yet")
        if not await broker.ping(timeout=1.0):
            raise RuntimeError("broker connection is down")

    async def rules_ready() -> None:
        if not directory.loaded:
            raise RuntimeError("rules not loaded yet")

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        runner = asyncio.create_task(background(), name="alerts background")
        try:
            yield
        finally:
            runner.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await runner
            await discard_broker()
            await deliveries.close()
            await processor.close()
            await webhooks.close()
            await mongo.close()

    app = FastAPI(
        title="Fragmenty alerts",
        version="0.1.0",
        description="Saved alert rules delivered to Telegram, Standard Webhooks, Apprise URLs and Atom feeds.",
        lifespan=lifespan,
    )
    app.include_router(build_api(store, directory, accounts, deliveries, settings))
    for route in ops_routes(
        metrics.registry, {"broker": broker_ready, "database": store.ping, "rules": rules_ready}
    ):
        app.router.routes.append(route)
    service = AlertsService(
        settings, app, broker, store, directory, processor, deliveries, metrics, bot
    )
    service.consuming = consuming
    service.prune = prune
    return service


def settle_heap() -> None:
    """Keep the rules out of the garbage collector's full passes.

    Thousands of compiled rules make the heap large, and every full collection walks all of it:
    under benchmarks/alerts.py (10,000 rules, 220 alerts/s) those passes paused the event loop
    for 150-350 ms every few seconds, which was the alerts' p99. Frozen objects are never
    walked. After a reload the previous rules are garbage: unfreeze, collect them once, freeze
    what is left.
    """
    gc.unfreeze()
    gc.collect()
    gc.freeze()


async def _nothing() -> None:
    return None


def instance_name(settings: AlertsSettings) -> str:
    return settings.alerts_instance_id or uuid.uuid4().hex[:8]


async def serve(settings: AlertsSettings) -> None:
    configure_logging("alerts", level=settings.log_level, json_lines=settings.log_json)
    service = build_alerts(settings)
    logger.info("alerts %s on %s:%d", instance_name(settings), settings.host, settings.alerts_port)
    config = server_config(
        service.app,
        settings,
        port=settings.alerts_port,
        lifespan="on",
        log_config=None,
        access_log=False,
        proxy_headers=True,
        timeout_graceful_shutdown=10,
    )
    await uvicorn.Server(config).serve()
