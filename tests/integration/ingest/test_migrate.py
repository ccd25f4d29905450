"""``fragmenty-ingest migrate`` upgrades a schema-1 database in place: idempotent, resumable.

The schema-1 database is what the previous ingest wrote for a stream (the same decisions, its
document shapes: ``events`` with ``rollup_key``, ``price_history``, rollups without a guard);
after the migration every reader sees every event once, at positions in the old ``_id`` order,
and a running ingest goes on from there.
"""

from __future__ import annotations

from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from fragmenty_ingest.migrate import migrate, stored_documents
from fragmenty_ingest.plan import WritePlan
from fragmenty_shared.event_log import EventLogReader
from fragmenty_shared.listing_history import ListingHistoryReader
from fragmenty_shared.money import to_nanoton
from fragmenty_shared.schema import SCHEMA_VERSION_ID, SEQ_COUNTER_ID, Collections
from fragmenty_shared.storage import event_to_document
from tests.integration.ingest.harness import Expected, stream

Database = AsyncDatabase[dict[str, Any]]


async def write_schema_1(database: Database, plan: WritePlan) -> list[str]:
    """What schema-1 ingest stored for ``plan``; returns the event ids."""
    events = []
    for key, event in plan._keyed_events:
        document = {**event_to_document(event), "rollup_key": key}
        del document["seq"]  # schema 1 had no positions
        events.append(document)
    history = []
    for event in plan.events:
        state = event.new or event.old
        assert state is not None
        history.append(
            {
                "_id": event.event_id,
                "listing_id": f"{event.asset.value}:{event.slug}",
                "type": event.type.value,
                "at": event.occurred_at,
                "status": state.status.value,
                "price_nanoton": to_nanoton(state.price_ton),
            }
        )
    await database[Collections.LEGACY_EVENTS].insert_many(events)
    await database[Collections.LEGACY_PRICE_HISTORY].insert_many(history)
    await database[Collections.LISTINGS].insert_many(
        [{"_id": key, **fields} for key, fields in plan.listing_sets.items()]
    )
    await database[Collections.DAILY_ROLLUPS].insert_many(
        [{"_id": key, **delta.totals()} for key, delta in plan.rollup_deltas().items()]
    )
    return [event["_id"] for event in events]


async def test_a_schema_1_database_is_migrated_in_place_and_a_second_run_changes_nothing(
    mongo_db: Database,
) -> None:
    expected = Expected.of(stream(60, price_changes=30, sold=10))
    old_ids = await write_schema_1(mongo_db, expected.plan)
    in_old_order = sorted(old_ids)

    # A first run that stopped halfway: some of its blocks written, nothing dropped.
    events = [d async for d in mongo_db[Collections.LEGACY_EVENTS].find({})]
    events.sort(key=lambda d: d["_id"])
    partial = stored_documents(events, first_seq=1, window_events=50)
    await mongo_db[Collections.EVENT_LOG].insert_many(partial.window_blocks[:1])
    await mongo_db[Collections.INGEST_META].insert_one({"_id": "migration_2", "base": 0})

    report = await migrate(mongo_db, window_events=50)
    assert not report.already_current
    assert (report.events, report.last_seq) == (len(old_ids), len(old_ids))

    logged = await EventLogReader(mongo_db).after(0, limit=10_000)
    assert [e["_id"] for e in logged] == in_old_order  # each once, in schema 1's order
    assert [e["seq"] for e in logged] == list(range(1, len(old_ids) + 1))
    assert "rollup_key" not in logged[0]
    window = [b async for b in mongo_db[Collections.EVENT_LOG].find({})]
    assert sum(b["count"] for b in window) <= 50 + 1_000  # the newest are in the window

    reader = ListingHistoryReader(mongo_db)
    for key in expected.states:
        history = [e["_id"] for e in await reader.events(key)]
        assert history == [i for i in in_old_order if f":{key.split(':')[1]}:" in i], key
    rollups = [d async for d in mongo_db[Collections.DAILY_ROLLUPS].find({})]
    assert all(d["applied_seq"] == len(old_ids) for d in rollups)
    assert await mongo_db[Collections.DAILY_CLOSE].count_documents({}) >= 2
    names = set(await mongo_db.list_collection_names())
    assert not {Collections.LEGACY_EVENTS, Collections.LEGACY_PRICE_HISTORY} & names
    counter = await mongo_db[Collections.INGEST_META].find_one({"_id": SEQ_COUNTER_ID})
    assert counter is not None
    assert counter["value"] == len(old_ids)
    version = await mongo_db[Collections.INGEST_META].find_one({"_id": SCHEMA_VERSION_ID})
    assert version is not None
    assert version["value"] == 2

    again = await migrate(mongo_db, window_events=50)
    assert again.already_current
    assert [e["_id"] for e in await EventLogReader(mongo_db).after(0, limit=10_000)] == (
        in_old_order
    )
