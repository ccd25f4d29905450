"""The ingest decision function: every event type, no change, replays and out-of-order views."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest

from fragmenty_ingest.decide import CrawlSighting, change_pct, decide_census, decide_observation
from fragmenty_ingest.state import ListingState
from fragmenty_shared.contracts import EventType, ListingObserved, ListingStatus, make_event_id
from fragmenty_shared.money import to_nanoton
from tests.unit.ingest.factory import T0, census, observed


def known(observation: ListingObserved) -> ListingState:
    state = decide_observation(None, observation).state
    assert state is not None
    return state


def types(decision_events: tuple[object, ...]) -> list[EventType]:
    return [event.type for event in decision_events]  # type: ignore[attr-defined]


def test_first_sighting_is_listed_with_a_deterministic_id() -> None:
    observation = observed()
    decision = decide_observation(None, observation)
    assert decision.write
    [event] = decision.events
    assert event.type is EventType.LISTED
    assert event.event_id == make_event_id(
        observation.asset, observation.slug, EventType.LISTED, observation.observed_at
    )
    assert event.old is None
    assert event.new is not None
    assert event.new.price_ton == observation.price_ton
    assert decision.state is not None
    assert decision.state.first_seen_at == T0
    assert decision.state.memorability is not None  # numbers carry memorability


def test_first_sighting_in_the_sold_view_is_a_sale() -> None:
    decision = decide_observation(None, observed(status=ListingStatus.SOLD, sold_at=T0))
    assert types(decision.events) == [EventType.SOLD]


def test_an_unchanged_observation_yields_nothing_and_no_write() -> None:
    state = known(observed())
    later = observed(at=T0 + timedelta(hours=1))
    decision = decide_observation(state, later)
    assert decision.events == ()
    assert not decision.write
    assert decision.state is not None
    assert decision.state.observed_at == T0 + timedelta(hours=1)
    assert decision.state.changed_at == T0


def test_a_replay_of_the_same_observation_yields_nothing() -> None:
    observation = observed(price="120")
    state = known(observed())
    first = decide_observation(
        state, observation.model_copy(update={"observed_at": T0 + timedelta(minutes=5)})
    )
    assert first.state is not None
    replay = decide_observation(
        first.state, observation.model_copy(update={"observed_at": T0 + timedelta(minutes=5)})
    )
    assert replay.events == ()
    assert not replay.write


def test_replaying_from_scratch_gives_the_same_event_ids() -> None:
    stream = [observed(), observed(at=T0 + timedelta(hours=1), price="150")]

    def run() -> list[str]:
        state = None
        ids: list[str] = []
        for observation in stream:
            decision = decide_observation(state, observation)
            state = decision.state
            ids += [event.event_id for event in decision.events]
        return ids

    assert run() == run()
    assert len(run()) == 2


@pytest.mark.parametrize(("new_price", "pct"), [("150", 50.0), ("75", -25.0)])
def test_price_change_up_or_down_carries_change_pct(new_price: str, pct: float) -> None:
    state = known(observed(price="100"))
    decision = decide_observation(state, observed(at=T0 + timedelta(hours=1), price=new_price))
    [event] = decision.events
    assert event.type is EventType.PRICE_CHANGED
    assert event.change_pct == pct
    assert event.old is not None
    assert event.old.price_ton == 100
    assert decision.state is not None
    assert decision.state.price_nanoton == to_nanoton(event.new.price_ton)  # type: ignore[union-attr]
    assert decision.state.changed_at == T0 + timedelta(hours=1)


def test_status_change_from_auction_to_sale() -> None:
    state = known(observed())
    decision = decide_observation(
        state, observed(at=T0 + timedelta(days=4), status=ListingStatus.SALE, price="100")
    )
    assert types(decision.events) == [EventType.STATUS_CHANGED]
    event = decision.events[0]
    assert event.old is not None
    assert event.old.status is ListingStatus.AUCTION
    assert event.new is not None
    assert event.new.status is ListingStatus.SALE


def test_a_later_auction_end_is_an_extension_and_a_bid_also_moves_the_price() -> None:
    state = known(observed())
    extended = observed(
        at=T0 + timedelta(hours=2), price="110", ends_at=T0 + timedelta(days=3, hours=1)
    )
    decision = decide_observation(state, extended)
    assert types(decision.events) == [EventType.PRICE_CHANGED, EventType.AUCTION_EXTENDED]
    assert len({event.event_id for event in decision.events}) == 2


def test_sold_with_the_sale_price() -> None:
    state = known(observed())
    decision = decide_observation(
        state,
        observed(
            at=T0 + timedelta(days=3),
            status=ListingStatus.SOLD,
            price="180",
            sold_at=T0 + timedelta(days=3),
        ),
    )
    [event] = decision.events
    assert event.type is EventType.SOLD
    assert event.new is not None
    assert event.new.price_ton == 180
    assert event.change_pct == 80.0


def test_an_older_observation_never_rolls_state_back() -> None:
    newer = decide_observation(known(observed()), observed(at=T0 + timedelta(hours=2), price="200"))
    assert newer.state is not None
    stale = decide_observation(newer.state, observed(at=T0 + timedelta(hours=1), price="150"))
    assert stale.events == ()
    assert not stale.write
    assert stale.state == newer.state


def test_exchange_rate_moves_alone_are_not_a_change() -> None:
    state = known(observed())
    decision = decide_observation(
        state, observed(at=T0 + timedelta(hours=1), ton_usd_rate=Decimal("6.1"))
    )
    assert decision.events == ()
    assert not decision.write


def test_a_new_title_is_written_without_an_event() -> None:
    state = known(observed())
    decision = decide_observation(
        state, observed(at=T0 + timedelta(hours=1), title="+888 0000 1234")
    )
    assert decision.events == ()
    assert decision.write
    assert decision.state is not None
    assert decision.state.changed_at == T0


def test_change_pct_from_zero_is_none() -> None:
    assert change_pct(0, 10) is None
    assert change_pct(200, 100) == -50.0


# --- delisting ---------------------------------------------------------------------------------


def _sighting(*observations: ListingObserved) -> CrawlSighting:
    slugs: dict[tuple[str, str], set[str]] = {}
    for observation in observations:
        slugs.setdefault((observation.asset.value, observation.status.value), set()).add(
            observation.slug
        )
    return CrawlSighting(
        listing_ids=frozenset(f"{o.asset.value}:{o.slug}" for o in observations),
        slugs_by_view={view: frozenset(s) for view, s in slugs.items()},
    )


def _states_before_crawl() -> list[ListingState]:
    early = T0 - timedelta(days=1)
    return [known(observed("88800000001", at=early)), known(observed("88800000002", at=early))]


def test_a_complete_fully_seen_view_delists_the_missing_listing() -> None:
    states = _states_before_crawl()
    seen = observed("88800000001", at=T0)
    decision = decide_census(states, census(rows=1), _sighting(seen))
    [(after, event)] = decision.delisted
    assert event.type is EventType.DELISTED
    assert event.slug == "88800000002"
    assert event.new is None
    assert event.old is not None
    assert after.delisted_at is not None


def test_an_incomplete_view_never_delists() -> None:
    decision = decide_census(
        _states_before_crawl(), census(rows=1, complete=False), _sighting(observed("88800000001"))
    )
    assert decision.delisted == ()


def test_a_view_ingest_did_not_see_in_full_never_delists() -> None:
    # The crawler published 2 rows but ingest (restarted mid-crawl) saw only one of them.
    decision = decide_census(
        _states_before_crawl(), census(rows=2), _sighting(observed("88800000001"))
    )
    assert decision.delisted == ()
    assert decision.views_not_trusted == (("number", "auction"),)


def test_already_delisted_and_sold_listings_are_not_delisted_again() -> None:
    states = _states_before_crawl()
    states[1] = replace(states[1], delisted_at=T0 - timedelta(hours=1))
    decision = decide_census(states, census(rows=1), _sighting(observed("88800000001")))
    assert decision.delisted == ()


def test_a_delisted_listing_seen_again_is_listed_again() -> None:
    state = replace(known(observed()), delisted_at=T0 + timedelta(hours=1))
    decision = decide_observation(state, observed(at=T0 + timedelta(days=1)))
    assert types(decision.events) == [EventType.LISTED]
    assert decision.state is not None
    assert decision.state.delisted_at is None
