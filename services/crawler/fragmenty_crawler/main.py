"""The crawler's composition root: broker, publisher, prior state, ops server, census loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator

from faststream.rabbit import RabbitBroker

from fragmenty_crawler.census import CensusReport
from fragmenty_crawler.metrics import CrawlerMetrics
from fragmenty_crawler.prior import MemoryPriorState, MongoPriorState, PriorState
from fragmenty_crawler.progress import ProgressLine
from fragmenty_crawler.publisher import ListingsPublisher
from fragmenty_crawler.runner import CensusRunner
from fragmenty_crawler.settings import CrawlerSettings
from fragmenty_crawler.views import ALL_VIEWS, View
from fragmenty_shared.broker import make_broker
from fragmenty_shared.logs import configure_logging
from fragmenty_shared.ops import ReadinessCheck, serve_ops
from fragmenty_shared.storage import make_mongo_client
from fragmenty_shared.topology import Topology

logger = logging.getLogger(__name__)


def setup_logging(settings: CrawlerSettings) -> None:
    configure_logging("crawler", level=settings.log_level, json_lines=settings.log_json)
    # Scrapy's own INFO lines (enabled middlewares, overridden settings) are noise here.
    logging.getLogger("scrapy").setLevel(max(logging.WARNING, logging.getLogger().level))


def make_prior_state(settings: CrawlerSettings) -> PriorState:
    if settings.prior_state == "mongo":
        return MongoPriorState(settings.mongodb_url, settings.mongodb_database)
    return MemoryPriorState()


@contextlib.asynccontextmanager
async def connected_broker(settings: CrawlerSettings) -> AsyncIterator[RabbitBroker]:
    broker = make_broker(settings)
    await broker.connect()
    try:
        yield broker
    finally:
        await broker.stop()


def build_runner(
    settings: CrawlerSettings,
    broker: RabbitBroker,
    metrics: CrawlerMetrics,
    *,
    views: tuple[View, ...] = ALL_VIEWS,
    progress: ProgressLine | None = None,
    scheduled: bool = False,
) -> CensusRunner:
    return CensusRunner(
        settings,
        ListingsPublisher(broker, Topology(settings.namespace)),
        metrics,
        make_prior_state(settings),
        views=views,
        on_progress=progress.on_progress if progress else None,
        on_view_done=progress.on_view_done if progress else None,
        scheduled=scheduled,
    )


async def run_once(
    settings: CrawlerSettings, *, views: tuple[View, ...] = ALL_VIEWS
) -> CensusReport:
    """One census; the caller turns ``report.complete`` into the exit status."""
    progress = ProgressLine()
    async with connected_broker(settings) as broker:
        runner = build_runner(settings, broker, CrawlerMetrics(), views=views, progress=progress)
        try:
            return await runner.run()
        finally:
            progress.finish()


async def run_every(
    settings: CrawlerSettings, interval_s: float, *, views: tuple[View, ...] = ALL_VIEWS
) -> None:
    """A census every ``interval_s`` seconds (start to start) until SIGTERM/SIGINT."""
    metrics = CrawlerMetrics()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with connected_broker(settings) as broker:
        ops = asyncio.create_task(
            serve_ops(
                metrics.registry,
                readiness_checks(settings, broker),
                settings=settings,
                port=settings.crawler_port,
            )
        )
        runner = build_runner(
            settings, broker, metrics, views=views, progress=ProgressLine(), scheduled=True
        )
        try:
            while not stop.is_set():
                started = loop.time()
                census = asyncio.create_task(runner.run())
                stopper = asyncio.create_task(stop.wait())
                await asyncio.wait({census, stopper}, return_when=asyncio.FIRST_COMPLETED)
                if stop.is_set() and not census.done():
                    logger.info("stopping: the running census will be reported incomplete")
                    await runner.stop()
                try:
                    await census
                except Exception:
                    # The broker or the database was unreachable before the census could start:
                    # the loop survives, the next census tries again, and the metric shows it.
                    logger.exception("census failed")
                    metrics.censuses.labels("failed").inc()
                stopper.cancel()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(
                        stop.wait(), max(0.0, interval_s - (loop.time() - started))
                    )
        finally:
            ops.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ops


def readiness_checks(settings: CrawlerSettings, broker: RabbitBroker) -> dict[str, ReadinessCheck]:
    async def rabbitmq() -> None:
        if not await broker.ping(timeout=2.0):
            raise ConnectionError("RabbitMQ does not answer")

    async def mongodb() -> None:
        client = make_mongo_client(settings.mongodb_url)
        try:
            await client.admin.command("ping")
        finally:
            await client.close()

    checks: dict[str, ReadinessCheck] = {"rabbitmq": rabbitmq}
    if settings.prior_state == "mongo":
        checks["mongodb"] = mongodb
    return checks
