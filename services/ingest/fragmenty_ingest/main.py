"""Ingest's composition root: wire the database, the broker, the pipeline and the ops endpoints."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

from faststream.rabbit import RabbitBroker

from fragmenty_ingest.batcher import BatchCollector
from fragmenty_ingest.consumer import ListingsConsumer
from fragmenty_ingest.metrics import IngestMetrics
from fragmenty_ingest.processor import Delivery, IngestProcessor
from fragmenty_ingest.publisher import EventPublisher
from fragmenty_ingest.retry import until_done
from fragmenty_ingest.settings import IngestSettings
from fragmenty_ingest.store import EventWindow, IngestStore
from fragmenty_ingest.valuation import EventValuer
from fragmenty_shared.broker import (
    declare_events_exchange,
    declare_listings_topology,
    make_broker,
)
from fragmenty_shared.event_loop import run as run_loop
from fragmenty_shared.logs import configure_logging
from fragmenty_shared.ops import serve_ops
from fragmenty_shared.storage import make_mongo_client
from fragmenty_shared.topology import Topology

logger = logging.getLogger(__name__)

SHUTDOWN_DRAIN_S = 10.0


async def _connect_broker(broker: RabbitBroker, topology: Topology, max_backoff_s: float) -> None:
    backoff = 0.2
    while True:
        try:
            await broker.connect()
            await declare_listings_topology(broker, topology)
            await declare_events_exchange(broker, topology)
            return
        except (TimeoutError, OSError, ConnectionError) as error:
            logger.warning("RabbitMQ not reachable (%s); retrying in %.1f s", error, backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, max_backoff_s)


async def run(settings: IngestSettings, stop: asyncio.Event) -> None:
    """Run ingest until ``stop`` is set."""
    topology = Topology(settings.namespace)
    metrics = IngestMetrics()
    mongo = make_mongo_client(settings.mongodb_url)
    store = IngestStore(
        mongo[settings.mongodb_database],
        EventWindow(keep_events=settings.ingest_event_window),
        history_rows=settings.ingest_history_rows,
    )
    broker = make_broker(settings, prefetch=settings.ingest_prefetch)
    publisher = EventPublisher(broker, topology)
    valuer = None
    if settings.ingest_valuation_refit_seconds > 0:
        valuer = EventValuer(
            mongo[settings.mongodb_database],
            metrics,
            refit_seconds=settings.ingest_valuation_refit_seconds,
        )
    processor = IngestProcessor(
        store,
        publisher,
        metrics,
        max_backoff_s=settings.ingest_retry_max_backoff_s,
        valuer=valuer,
    )
    collector: BatchCollector[Delivery] = BatchCollector(
        processor.process,
        max_size=settings.ingest_batch_size,
        linger_s=settings.ingest_batch_linger_ms / 1000,
        weigh=lambda delivery: delivery.rows,  # a page fills a batch by its rows
    )
    consumer = ListingsConsumer(broker, topology, collector, metrics)

    async def broker_ready() -> None:
        if not await broker.ping(timeout=1.0):
            raise ConnectionError("RabbitMQ does not answer")

    async def warmed() -> None:
        if not processor.ready:
            raise RuntimeError("still warming up")

    ops = asyncio.create_task(
        serve_ops(
            metrics.registry,
            {
                "rabbitmq": broker_ready,
                "database": store.ping,
                "warmed": warmed,
                "consuming": consumer.check_consuming,
            },
            settings=settings,
            port=settings.ingest_port,
        ),
        name="ops",
    )
    background: list[asyncio.Task[None]] = [ops]
    try:
        await until_done(
            store.ensure_indexes,
            what="creating indexes",
            max_backoff_s=settings.ingest_retry_max_backoff_s,
        )
        await _connect_broker(broker, topology, settings.ingest_retry_max_backoff_s)
        await publisher.bind()
        await processor.recover()
        if valuer is not None:  # in the background: events carry values once it has fitted
            background.append(asyncio.create_task(valuer.run(), name="valuation"))
        background.append(asyncio.create_task(collector.run(), name="batches"))
        background.append(asyncio.create_task(processor.watch(), name="writes"))
        background.append(
            asyncio.create_task(
                processor.relay_forever(settings.ingest_relay_interval_s), name="relay"
            )
        )
        await consumer.start()  # consuming starts here, once the state is warm
        logger.info("ingest consuming %s", topology.ingest_queue.name)
        stopped = asyncio.create_task(stop.wait())
        await asyncio.wait([stopped, *background], return_when=asyncio.FIRST_COMPLETED)
        for task in background:
            if task.done() and not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
    finally:
        # Stop taking batches, let the durable ones publish and acknowledge, then disconnect.
        # Whatever is still unacknowledged goes back to the queue when the connection closes.
        await consumer.stop()
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(processor.drain(), SHUTDOWN_DRAIN_S)
        with contextlib.suppress(Exception):
            await broker.stop()
        await mongo.close()


def main() -> None:
    settings = IngestSettings()
    configure_logging("ingest", level=settings.log_level, json_lines=settings.log_json)

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await run(settings, stop)

    run_loop(serve(), settings.event_loop)
