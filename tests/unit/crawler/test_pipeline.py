"""The publishing pipeline: a view's census only after its observations are confirmed."""

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

from fragmenty_crawler.census import CensusReport
from fragmenty_crawler.context import CensusContext, PageItem
from fragmenty_crawler.metrics import CrawlerMetrics
from fragmenty_crawler.pipeline import PublishPipeline, close_unfinished_views
from fragmenty_crawler.prior import ItemPageSelector
from fragmenty_crawler.publisher import PublishError
from fragmenty_crawler.views import View
from fragmenty_shared.contracts import Asset, CensusCompleted, ListingObserved, ListingStatus

VIEW = View(Asset.USERNAME, ListingStatus.SALE)


class RecordingPublisher:
    """Confirms observations only when the test opens the gate; records what was confirmed."""

    def __init__(self, *, fail: bool = False) -> None:
        self.gate = asyncio.Event()
        self.confirmed: list[Any] = []
        self.fail = fail

    async def publish_observations(self, observations: Sequence[ListingObserved]) -> None:
        await self.gate.wait()
        if self.fail:
            raise PublishError(len(observations), len(observations))
        self.confirmed.extend(observations)

    async def publish_census(self, census: CensusCompleted) -> None:
        self.confirmed.append(census)


def _observation(slug: str) -> ListingObserved:
    return ListingObserved(
        crawl_id="c1",
        observed_at=datetime.now(UTC),
        asset=Asset.USERNAME,
        slug=slug,
        title=f"@{slug}",
        status=ListingStatus.SALE,
        price_ton=Decimal(5),
        ton_usd_rate=Decimal(2),
        url=f"https://fragment.com/username/{slug}",
    )


def _pipeline(publisher: RecordingPublisher) -> tuple[PublishPipeline, CensusContext]:
    context = CensusContext(
        base_url="https://fragment.com",
        views=(VIEW,),
        crawl_id="c1",
        publisher=publisher,  # type: ignore[arg-type]
        metrics=CrawlerMetrics(),
        selector=ItemPageSelector("none", 0, {}),
        report=CensusReport("c1", datetime.now(UTC)),
    )
    context.progress[VIEW].listing_done = True
    crawler = SimpleNamespace(spider=SimpleNamespace(context=context))
    return PublishPipeline(crawler), context  # type: ignore[arg-type]


async def test_the_census_waits_for_every_confirm_of_its_view() -> None:
    publisher = RecordingPublisher()
    pipeline, context = _pipeline(publisher)
    context.progress[VIEW].pages = 2

    await pipeline.process_item(PageItem(VIEW, [_observation("aaaa")], 1))
    closing = asyncio.create_task(
        pipeline.process_item(PageItem(VIEW, [_observation("bbbb")], 2, final=True))
    )
    await asyncio.sleep(0.05)
    assert not closing.done()  # nothing confirmed yet, so no census either
    publisher.gate.set()
    await closing

    *rows, census = publisher.confirmed
    assert sorted(o.slug for o in rows) == ["aaaa", "bbbb"]
    assert isinstance(census, CensusCompleted)
    [view] = census.views
    assert (view.rows, view.pages, view.complete) == (2, 2, True)
    assert context.report.views == [view]


async def test_rows_sent_again_with_details_are_published_but_not_counted_as_rows() -> None:
    publisher = RecordingPublisher()
    publisher.gate.set()
    pipeline, _ = _pipeline(publisher)
    page = [_observation("aaaa"), _observation("bbbb")]
    again = page[0].model_copy(update={"url": page[0].url + "?again"})

    await pipeline.process_item(PageItem(VIEW, page, 1))
    await pipeline.process_item(PageItem(VIEW, [again], 2, final=True, new_rows=False))

    *rows, census = publisher.confirmed
    assert [o.slug for o in rows] == ["aaaa", "bbbb", "aaaa"]
    # Ingest trusts a view for delisting when it saw as many distinct listings as ``rows``.
    assert census.views[0].rows == 2


async def test_unconfirmed_observations_make_the_view_incomplete() -> None:
    publisher = RecordingPublisher(fail=True)
    publisher.gate.set()
    pipeline, context = _pipeline(publisher)

    await pipeline.process_item(PageItem(VIEW, [_observation("aaaa")], 1, final=True))

    [census] = publisher.confirmed
    assert not census.views[0].complete
    assert "not confirmed" in census.views[0].reason
    assert not context.report.complete


async def test_a_view_the_crawl_never_finished_is_reported_incomplete() -> None:
    publisher = RecordingPublisher()
    publisher.gate.set()
    pipeline, context = _pipeline(publisher)
    context.progress[VIEW].listing_done = False
    await pipeline.process_item(PageItem(VIEW, [_observation("aaaa")], 1))

    await close_unfinished_views(context)

    rows, census = publisher.confirmed
    assert rows.slug == "aaaa"
    assert census.views[0].complete is False
    assert census.views[0].rows == 1
    assert "ended before" in census.views[0].reason
