"""The event log's window and archive, and a listing's capped history, on the real database.

Small limits (a window of 5 events, history of 3 rows per listing) so that a few batches move
events to the archive and history rows to archive blocks; every reader still sees every event
exactly once, in position order, and a replayed batch changes nothing.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from fragmenty_ingest.decide import decide_observation
from fragmenty_ingest.plan import WritePlan
from fragmenty_ingest.state import ListingState
from fragmenty_ingest.store import BatchDocuments, EventWindow, IngestStore
from fragmenty_shared.event_log import EventLogReader
from fragmenty_shared.listing_history import ListingHistoryReader, decode_rows
from fragmenty_shared.schema import Collections, history_collection
from tests.unit.ingest.factory import T0, observed

Database = AsyncDatabase[dict[str, Any]]


async def write_batches(store: IngestStore, batches: int) -> list[str]:
    """Batches of two events: one listing's price changes, and a new listing each time."""
    states: dict[str, ListingState] = {}
    last_seq = await store.load_event_window()
    next_seq = last_seq + 1
    event_ids: list[str] = []
    for index in range(batches):
        plan = WritePlan()
        at = T0 + timedelta(minutes=index)
        for slug, price in (("88800000001", str(100 + index)), (f"8880000{index + 2:04d}", "50")):
            previous = states.get(slug)
            decision = decide_observation(previous, observed(slug, at=at, price=price))
            assert decision.state is not None
            states[slug] = decision.state
            plan.add_listing_write(
                decision.state, details=None, is_new=previous is None, events=decision.events
            )
        plan.number_events(next_seq)
        next_seq += plan.event_count
        batch = BatchDocuments.of(plan.outbox, last_seq)
        await store.write_outbox(batch)
        await store.apply(plan, batch)
        await store.apply(plan, batch)  # a retried batch: same writes, nothing doubled
        last_seq = batch.last_seq or last_seq
        event_ids += [event.event_id for event in plan.events]
    return event_ids


async def test_old_events_move_to_the_archive_and_every_reader_sees_each_once(
    mongo_db: Database,
) -> None:
    store = IngestStore(mongo_db, EventWindow(keep_events=5, archive_block_events=3))
    written = await write_batches(store, 10)
    assert len(written) == 20
    window = [b async for b in mongo_db[Collections.EVENT_LOG].find({})]
    archive = [b async for b in mongo_db[Collections.EVENT_ARCHIVE].find({})]
    assert archive, "nothing was archived"
    assert sum(b["count"] for b in window) < 5 + 3  # the window stays bounded
    reader = EventLogReader(mongo_db)
    every = await reader.after(0, limit=100)
    assert [e["_id"] for e in every] == written
    assert [e["seq"] for e in every] == list(range(1, 21))
    # From inside the archive, from the seam, from inside the window: no gap, no repeat.
    for since in (1, 3, archive[-1]["last_seq"], window[0]["first_seq"], 19):
        assert [e["seq"] for e in await reader.after(since, limit=100)] == list(
            range(since + 1, 21)
        )
    assert [e["seq"] for e in await reader.after(2, limit=4)] == [3, 4, 5, 6]
    assert [e["seq"] for e in await reader.latest(7)] == list(range(14, 21))
    assert [e["seq"] for e in await reader.latest(100)] == list(range(1, 21))
    assert await reader.last_seq() == 20

    # A restarted store knows the window and continues the positions' chain.
    again = IngestStore(mongo_db, EventWindow(keep_events=5, archive_block_events=3))
    assert await again.load_event_window() == 20


async def test_a_long_history_keeps_the_newest_rows_and_archives_the_rest(
    mongo_db: Database,
) -> None:
    store = IngestStore(mongo_db, history_rows=3)
    written = await write_batches(store, 8)
    key = "number:88800000001"
    document = await mongo_db[history_collection(key)].find_one({"_id": key})
    assert document is not None
    assert document["count"] <= 3
    assert document["archived"], "no rows were archived"
    # Rows move in blocks of at least half the cap, not one block per change: 8 rows at a cap
    # of 3 are 2 kept and 3 blocks of 2 (1-2, 3-4, 5-6).
    assert document["count"] == 2
    blocks = [
        b
        async for b in mongo_db[Collections.HISTORY_ARCHIVE].find(
            {"_id": {"$in": document["archived"]}}
        )
    ]
    assert sorted(len(decode_rows(block)) for block in blocks) == [2, 2, 2]
    history = await ListingHistoryReader(mongo_db).events(key)
    expected = [event_id for event_id in written if ":88800000001:" in event_id]
    assert [e["_id"] for e in history] == expected  # 1 listed + 7 price changes, each once
    assert [e["type"] for e in history][:2] == ["listed", "price_changed"]
