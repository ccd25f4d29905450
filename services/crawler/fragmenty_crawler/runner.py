"""One census: the spider over every view, publishing as it goes; returns what it saw."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from scrapy.crawler import AsyncCrawlerRunner
from scrapy.settings import Settings as ScrapySettings

from fragmenty_crawler.census import CensusReport, ViewProgress
from fragmenty_crawler.context import CensusContext
from fragmenty_crawler.metrics import CrawlerMetrics
from fragmenty_crawler.pipeline import close_unfinished_views
from fragmenty_crawler.prior import ItemPageSelector, PriorState
from fragmenty_crawler.publisher import ListingsPublisher
from fragmenty_crawler.scrapy_settings import scrapy_settings
from fragmenty_crawler.settings import CrawlerSettings
from fragmenty_crawler.spider import CensusSpider
from fragmenty_crawler.views import ALL_VIEWS, View
from fragmenty_shared.contracts import CensusView

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
    ) -> None:
        self.settings = settings
        self.publisher = publisher
        self.metrics = metrics
        self.prior = prior
        self.views = views
        self.on_progress = on_progress
        self.on_view_done = on_view_done
        self._scrapy: AsyncCrawlerRunner | None = None

    async def run(self) -> CensusReport:
        started_at = datetime.now(UTC)
        report = CensusReport(new_crawl_id(started_at), started_at)
        await self.publisher.declare()
        known = await self.prior.load() if self.settings.item_pages == "changed" else {}
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
        )
        logger.info(
            "census %s of %d views from %s",
            report.crawl_id,
            len(self.views),
            self.settings.fragment_url,
        )
        self._scrapy = AsyncCrawlerRunner(ScrapySettings(scrapy_settings(self.settings)))
        try:
            await self._scrapy.crawl(CensusSpider, context=context)
        finally:
            self._scrapy = None
            await close_unfinished_views(context)
            report.completed_at = datetime.now(UTC)
            self._record(report)
        return report

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
