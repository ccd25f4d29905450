"""A replay reads the event log's window once, however many pages it is handed on in."""

from __future__ import annotations

from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from fragmenty_notifier.event_store import REPLAY_BATCH, EventStore
from fragmenty_shared.schema import Collections
from fragmenty_shared.settings import Settings
from fragmenty_shared.storage import make_mongo_client
from tests.support.command_counts import FindCounter
from tests.support.event_log import store_events
from tests.unit.notifier.factories import make_event


async def test_a_replay_of_several_pages_reads_the_window_once(
    settings: Settings, mongo_db: AsyncDatabase[dict[str, Any]]
) -> None:
    blocks = 3
    per_block = REPLAY_BATCH  # 3 blocks: a replay from the first event spans three pages
    stored = []
    for block in range(blocks):
        events = [make_event(f"888{block:02d}{n:06d}") for n in range(per_block)]
        stored += await store_events(mongo_db, *events)
    since = stored[10].seq
    assert since is not None
    finds = FindCounter(Collections.EVENT_LOG)
    client = make_mongo_client(settings.mongodb_url, event_listeners=[finds])
    try:
        store = EventStore(client[settings.mongodb_database])
        pages = [page async for page in store.event_pages_after(since, limit=10_000)]
    finally:
        await client.close()
    assert [len(page) for page in pages] == [REPLAY_BATCH, REPLAY_BATCH, REPLAY_BATCH - 11]
    assert [event.event_id for page in pages for event in page] == [
        event.event_id for event in stored[11:]
    ]
    assert finds.count == 1


async def test_a_replay_stops_at_its_limit_inside_a_block(
    mongo_db: AsyncDatabase[dict[str, Any]],
) -> None:
    stored = await store_events(mongo_db, *(make_event(f"8880100{n:04d}") for n in range(30)))
    store = EventStore(mongo_db)
    replayed = [event async for event in store.events_after(0, limit=12)]
    assert [event.event_id for event in replayed] == [event.event_id for event in stored[:12]]
