"""One census: the spider over every view, publishing as it goes; returns what it saw."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from scrapy.crawler import AsyncCrawlerRunner
from scrapy.settings import Settings as ScrapySettings

from fragmenty_crawler import sold
from fragmenty_crawler.census import CensusReport, ViewProgress
from fragmenty_crawler.context import CensusContext
from fragmenty_crawler.gate import RequestGate
from fragmenty_crawler.metrics import CrawlerMetrics
from fragmenty_crawler.pipeline import close_unfinished_views
from fragmenty_crawler.prior import ItemPageSelector, PriorState
from fragmenty_crawler.publisher import ListingsPublisher
from fragmenty_crawler.scheduler import BudgetScheduler, FeedSpec
from fragmenty_crawler.scrapy_settings import scrapy_settings
from fragmenty_crawler.settings import CrawlerSettings
from fragmenty_crawler.spider import CensusSpider
from fragmenty_crawler.views import ALL_VIEWS, HeadFeed, View, head_feeds
from fragmenty_shared.contracts import CensusView, ListingStatus

logger = logging.getLogger(__name__)


def new_crawl_id(started_at: datetime) -> str:
    return f"{started_at:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


class CensusRunner:
    """Runs censuses with one publisher and one prior state; can stop a running one."""

    def __init__(
        self,
        settings: CrawlerSettings,
        publisher: ListingsPublisher,
        metrics: CrawlerMetrics,
        prior: PriorState,
        *,
        views: tuple[View, ...] = ALL_VIEWS,
        on_progress: Callable[[View, ViewProgress], None] | None = None,
        on_view_done: Callable[[CensusView], None] | None = None,
        scheduled: bool = False,
    ) -> None:
        """``scheduled``: censuses run back to back sharing their budget with feed heads
        (``run --every``); a plain census (``run --once``) reads the views and nothing else."""
        self.settings = settings
        self.publisher = publisher
        self.metrics = metrics
        self.prior = prior
        self.views = views
        self.on_progress = on_progress
        self.on_view_done = on_view_done
        self._scrapy: AsyncCrawlerRunner | None = None
        self._heads: dict[str, HeadFeed] = {}
        self._head_rows: dict[str, dict[str, tuple[object, ...]]] = {}
        self._scheduler: BudgetScheduler | None = None
        if scheduled and settings.politeness:
            self._heads = {feed.key: feed for feed in head_feeds(views)} if settings.heads else {}
            self._scheduler = BudgetScheduler(
                [
                    FeedSpec(key, self._period(feed), settings.head_idle_period_s)
                    for key, feed in self._heads.items()
                ],
                head_share=settings.head_share,
                item_share=settings.item_share,
                idle_after_s=settings.head_idle_after_s,
            )  # every feed due at once (the gate's clock starts far above 0)
        # Each view is read in its "listed" head's order, so its first page is that head's.
        self._census_heads = {
            feed.view: key for key, feed in self._heads.items() if feed.sort == "listed"
        }
        # Sold views: when each was last read in full and complete (this process only).
        self._full_sold_pass: dict[View, datetime] = {}
        self._scheduled = scheduled

    def _period(self, feed: HeadFeed) -> float:
        if feed.sort == "ending":
            return self.settings.ending_head_period_s
        return self.settings.head_period_s

    def _incremental_sold(self, now: datetime) -> frozenset[View]:
        """Sold views whose last full pass is recent enough to read only the newest sales."""
        if not self._scheduled:
            return frozenset()
        return sold.incremental_views(self._full_sold_pass, now, self.settings.sold_full_sweep_s)

    async def run(self) -> CensusReport:
        started_at = datetime.now(UTC)
        report = CensusReport(new_crawl_id(started_at), started_at)
        await self.publisher.declare()
        incremental = self._incremental_sold(started_at)
        wants_prior = self.settings.item_pages == "changed" or bool(incremental)
        known = await self.prior.load() if wants_prior else {}
        if not known:
            incremental = frozenset()  # nothing known to stop at: read them in full
        gate = (
            RequestGate(
                self._scheduler,
                self.settings.crawl_rate,
                lost_after_s=self.settings.request_timeout_s * 2,
            )
            if self._scheduler is not None
            else None
        )
        if gate is not None and wants_prior and not known:
            # Nothing known yet (the first census of this process, or an empty database):
            # every row is news that the census publishes anyway, and a head's first read
            # publishes nothing, so heads would only slow down getting to know the market.
            gate.heads_enabled = False
        context = CensusContext(
            base_url=self.settings.fragment_url,
            views=self.views,
            crawl_id=report.crawl_id,
            publisher=self.publisher,
            metrics=self.metrics,
            selector=ItemPageSelector(self.settings.item_pages, self.settings.item_page_cap, known),
            report=report,
            history_page_cap=self.settings.history_page_cap,
            on_progress=self.on_progress,
            on_view_done=self.on_view_done,
            on_published=self.prior.remember,
            gate=gate,
            heads=self._heads,
            head_rows=self._head_rows,
            incremental_sold=incremental,
            census_heads=self._census_heads if gate is not None else {},
        )
        logger.info(
            "census %s of %d views from %s",
            report.crawl_id,
            len(self.views),
            self.settings.fragment_url,
        )
        self._scrapy = AsyncCrawlerRunner(
            ScrapySettings(scrapy_settings(self.settings, gated=gate is not None))
        )
        slots = asyncio.create_task(gate.run()) if gate is not None else None
        try:
            await self._scrapy.crawl(CensusSpider, context=context)
        finally:
            self._scrapy = None
            if slots is not None:
                slots.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await slots
            await asyncio.gather(*context.head_publishes, return_exceptions=True)
            await close_unfinished_views(context)
            report.completed_at = datetime.now(UTC)
            self._remember_full_sold_passes(report, incremental)
            self._record(report)
        return report

    def _remember_full_sold_passes(
        self, report: CensusReport, incremental: frozenset[View]
    ) -> None:
        for summary in report.views:
            view = View(summary.asset, summary.status)
            if summary.status is not ListingStatus.SOLD:
                continue
            if not summary.complete:
                self._full_sold_pass.pop(view, None)  # read it in full again next time
            elif view not in incremental:
                self._full_sold_pass[view] = report.started_at

    async def stop(self) -> None:
        """Stop the running census; its unfinished views are reported incomplete."""
        if self._scrapy is not None:
            await self._scrapy.stop()

    def _record(self, report: CensusReport) -> None:
        self.metrics.census_duration.observe(report.duration_s)
        self.metrics.censuses.labels("complete" if report.complete else "incomplete").inc()
        self.metrics.last_census.set(report.completed_at.timestamp() if report.completed_at else 0)
        logger.info(
            "census %s %s: %d rows in %.1fs",
            report.crawl_id,
            "complete" if report.complete else "INCOMPLETE",
            report.rows,
            report.duration_s,
        )
