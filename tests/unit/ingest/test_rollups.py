"""Rollup keys and deltas: what each event adds to its day."""

from __future__ import annotations

from datetime import timedelta

from fragmenty_ingest.decide import decide_observation
from fragmenty_ingest.plan import WritePlan
from fragmenty_ingest.rollups import RollupDelta, rollup_key
from fragmenty_shared.contracts import ListingStatus
from tests.unit.ingest.factory import T0, observed


def test_listed_and_sold_land_on_their_days_with_floor_and_volume() -> None:
    plan = WritePlan()
    first = decide_observation(None, observed("88800000001", price="100"))
    second = decide_observation(None, observed("88800000002", price="80"))
    sale_day = T0 + timedelta(days=2)
    sold = decide_observation(
        first.state,
        observed(
            "88800000001",
            at=T0 + timedelta(days=3),
            status=ListingStatus.SOLD,
            price="150",
            sold_at=sale_day,
        ),
    )
    for decision, observation_is_new in ((first, True), (second, True), (sold, False)):
        assert decision.state is not None
        plan.add_listing_write(
            decision.state, details=None, is_new=observation_is_new, events=decision.events
        )
    plan.number_events(41)
    deltas = plan.rollup_deltas()
    listed = deltas["2026-11-20:number:auction"]
    assert (listed.listed_count, listed.floor_nanoton, listed.ceiling_nanoton) == (
        2,
        80 * 10**9,
        100 * 10**9,
    )
    sales = deltas["2026-11-22:number:sold"]  # the day of the sale, not of the observation
    assert (sales.sold_count, sales.volume_nanoton) == (1, 150 * 10**9)
    assert sales.volume_usd_cents == 150 * 550  # 5.5 USD per TON
    assert len(plan.outbox) == 3
    assert [event.seq for event in plan.events] == [41, 42, 43]
    assert (listed.last_seq, sales.last_seq) == (42, 43)  # what their guards compare with
    assert len(plan.listing_sets) == 2


def test_increment_update_uses_inc_min_max() -> None:
    delta = RollupDelta()
    decision = decide_observation(None, observed(price="7"))
    delta.add(decision.events[0])
    update = delta.increment_update()
    assert update["$set"] == {"applied_seq": 0}
    assert update["$inc"]["listed_count"] == 1
    assert update["$min"] == {"floor_nanoton": 7 * 10**9}
    assert update["$max"] == {"ceiling_nanoton": 7 * 10**9}
    assert rollup_key(decision.events[0], None) == "2026-11-20:number:auction"
