"""A crawl reported view by view is judged only once every view's census is in."""

from __future__ import annotations

from datetime import timedelta

from fragmenty_ingest.decide import decide_census
from fragmenty_ingest.sightings import CrawlSightings
from fragmenty_shared.contracts import CensusCompleted, ListingStatus
from tests.unit.ingest.factory import T0, census, observed
from tests.unit.ingest.test_decide import known


def per_view_census(status: ListingStatus, rows: int) -> CensusCompleted:
    return census(rows=rows, status=status).model_copy(update={"views_in_crawl": 2})


def test_a_listing_that_moved_to_a_view_crawled_later_is_not_delisted() -> None:
    moved = known(observed("88800000001", at=T0 - timedelta(days=1)))  # was on auction
    sightings = CrawlSightings()

    # The auction view finishes first, without the listing: it is now for sale.
    assert sightings.add_census(per_view_census(ListingStatus.AUCTION, rows=0)) is None
    sightings.see(observed("88800000001", status=ListingStatus.SALE))
    whole = sightings.add_census(per_view_census(ListingStatus.SALE, rows=1))

    assert whole is not None
    assert {(view.asset.value, view.status.value) for view in whole.views} == {
        ("number", "auction"),
        ("number", "sale"),
    }
    decision = decide_census([moved], whole, sightings.sighting("crawl-1"))
    assert decision.delisted == ()
    assert ("number", "auction") in decision.views_delisted_from


def test_a_listing_missing_from_every_view_of_the_crawl_is_delisted() -> None:
    gone = known(observed("88800000002", at=T0 - timedelta(days=1)))
    sightings = CrawlSightings()
    assert sightings.add_census(per_view_census(ListingStatus.AUCTION, rows=0)) is None
    whole = sightings.add_census(per_view_census(ListingStatus.SALE, rows=0))
    assert whole is not None
    [(_, event)] = decide_census([gone], whole, sightings.sighting("crawl-1")).delisted
    assert event.slug == "88800000002"


def test_a_census_of_the_whole_crawl_is_judged_at_once() -> None:
    sightings = CrawlSightings()
    whole = census(rows=0)
    assert sightings.add_census(whole) == whole
