"""The item pipeline: publish each page's observations, then each finished view's census.

Observations of a page are published without waiting (many confirms in flight); a view's
``CensusCompleted`` goes out only after every observation of that view was confirmed, so ingest,
reading the queue in order, has all of a view's rows before it hears the view was complete.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime

from scrapy.crawler import Crawler

from fragmenty_crawler.context import CensusContext, PageItem, ViewPublishing
from fragmenty_crawler.publisher import PublishError
from fragmenty_crawler.views import View
from fragmenty_shared.contracts import CensusCompleted, CensusView, ListingObserved

logger = logging.getLogger(__name__)

# How long a view's last item waits for earlier items of the view to reach the pipeline.
_STRAGGLER_TIMEOUT_S = 60.0


class PublishPipeline:
    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> PublishPipeline:
        return cls(crawler)

    @property
    def context(self) -> CensusContext:
        context: CensusContext = self.crawler.spider.context  # type: ignore[union-attr]
        return context

    async def process_item(self, item: PageItem) -> PageItem:
        state = self.context.publishing[item.view]
        # Start publishing before any await, so the view's final item always finds these tasks.
        if item.observations:
            publishing = self._publish(item.observations, counted=item.new_rows)
            state.pending.append(asyncio.ensure_future(publishing))
        state.items_seen += 1
        state.arrived.set()
        if item.final:
            await self._wait_for_stragglers(state, item.sequence)
            if state.items_seen < item.sequence:
                # Not every page of the view reached the pipeline: its census cannot vouch for it.
                missing = item.sequence - state.items_seen
                self.context.progress[item.view].fail(f"{missing} pages never reached the pipeline")
            await close_view(self.context, item.view, state)
        return item

    async def _publish(self, observations: list[ListingObserved], *, counted: bool) -> int:
        """Returns how many of the view's rows this published (0 for rows sent again)."""
        context = self.context
        await context.publisher.publish_observations(observations)
        context.metrics.published.labels("listing_observed").inc(len(observations))
        if context.on_published is not None:
            context.on_published(observations)
        return len(observations) if counted else 0

    async def _wait_for_stragglers(self, state: ViewPublishing, sequence: int) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + _STRAGGLER_TIMEOUT_S
        while state.items_seen < sequence and loop.time() < deadline:
            state.arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(state.arrived.wait(), deadline - loop.time())


async def close_unfinished_views(context: CensusContext) -> None:
    """After the crawl: a view that never finished (a bug, a stopped crawl) is incomplete."""
    for view in context.views:
        state = context.publishing[view]
        if not state.closed:
            context.progress[view].fail("the crawl ended before the view was finished")
            await close_view(context, view, state)


async def close_view(context: CensusContext, view: View, state: ViewPublishing) -> None:
    """Wait for the view's confirms, then publish its ``CensusCompleted``."""
    state.closed = True
    results = await asyncio.gather(*state.pending, return_exceptions=True)
    published = sum(result for result in results if isinstance(result, int))
    unconfirmed = 0
    for result in results:
        if isinstance(result, PublishError):
            unconfirmed += result.total
        elif isinstance(result, BaseException):
            logger.error("publishing %s failed: %r", view.key, result)
            unconfirmed += 1
    summary = context.progress[view].summary(published, unconfirmed)
    census = CensusCompleted(
        crawl_id=context.crawl_id,
        started_at=context.started_at,
        completed_at=datetime.now(UTC),
        views=[summary],
        # Ingest waits for every view's census before it judges what is missing.
        views_in_crawl=len(context.views),
    )
    try:
        await context.publisher.publish_census(census)
        context.metrics.published.labels("census_completed").inc()
    except Exception as exc:  # the census is lost; the report says so and --once exits non-zero
        logger.error("census of %s not confirmed: %r", view.key, exc)
        summary = summary.model_copy(
            update={"complete": False, "reason": f"census not confirmed: {exc}"[:1000]}
        )
    record_view(context, summary)
    if context.gate is not None and all(done.closed for done in context.publishing.values()):
        context.gate.stop_heads()  # the census is over: let its crawl finish


def record_view(context: CensusContext, summary: CensusView) -> None:
    context.report.views.append(summary)
    labels = (summary.asset.value, summary.status.value)
    context.metrics.view_complete.labels(*labels).set(1 if summary.complete else 0)
    context.metrics.view_rows.labels(*labels).set(summary.rows)
    level = logging.INFO if summary.complete else logging.WARNING
    logger.log(
        level,
        "view %s:%s %s: %d rows, %d pages%s",
        *labels,
        "complete" if summary.complete else "INCOMPLETE",
        summary.rows,
        summary.pages,
        f" ({summary.reason})" if summary.reason else "",
    )
    if context.on_view_done is not None:
        context.on_view_done(summary)
