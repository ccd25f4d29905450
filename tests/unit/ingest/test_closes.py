"""The close of a day: listed count, floor and exact median, from states or a replayed history."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from fragmenty_ingest.closes import HistoryChange, closes_from_history, closes_of
from fragmenty_ingest.decide import decide_observation
from fragmenty_shared.contracts import Asset, ListingStatus
from tests.unit.ingest.factory import observed


def change(listing: str, at: datetime, kind: str, status: str, ton: int) -> HistoryChange:
    return HistoryChange(listing, at, kind, status, ton * 10**9)


def test_a_replay_gives_each_day_with_a_change_its_close() -> None:
    day1 = datetime(2026, 11, 1, 10, tzinfo=UTC)
    day2 = day1 + timedelta(days=1)
    changes = [
        change("number:a", day1, "listed", "auction", 100),
        change("number:b", day1, "listed", "sale", 300),
        change("number:c", day1, "listed", "sale", 200),
        change("number:a", day2, "sold", "sold", 150),
        change("number:c", day2, "delisted", "sale", 200),
        change("number:d", day2, "listed", "auction", 50),
        change("username:x", day2, "listed", "sale", 7),
    ]
    closes = {c["_id"]: c for c in closes_from_history(changes)}
    assert [(c["listed_count"], c["floor_nanoton"], c["median_ton"]) for c in closes.values()] == [
        (3, 100 * 10**9, "200"),  # 2026-11-01 numbers
        (0, None, None),  # 2026-11-01 usernames
        (2, 50 * 10**9, "175"),  # 2026-11-02 numbers: b 300, d 50
        (1, 7 * 10**9, "7"),
    ]
    assert list(closes) == [
        "2026-11-01:number",
        "2026-11-01:username",
        "2026-11-02:number",
        "2026-11-02:username",
    ]


def test_the_close_of_states_counts_only_listed_ones_and_halves_exactly() -> None:
    states = []
    for slug, price in (("88800000001", "1"), ("88800000002", "2")):
        decision = decide_observation(None, observed(slug, price=price))
        assert decision.state is not None
        states.append(decision.state)
    sold = decide_observation(
        None, observed("88800000003", price="9", status=ListingStatus.SOLD, sold_at=None)
    )
    assert sold.state is not None
    numbers, usernames = closes_of([*states, sold.state], date(2026, 11, 20))
    assert numbers == {
        "_id": "2026-11-20:number",
        "day": "2026-11-20",
        "asset": Asset.NUMBER.value,
        "listed_count": 2,
        "floor_nanoton": 10**9,
        "median_ton": "1.5",
    }
    assert usernames["listed_count"] == 0
