"""A batch cut short after its outbox and part of its effects is finished exactly at start."""

from __future__ import annotations

from typing import Any

from faststream.rabbit import RabbitBroker
from pymongo.asynchronous.database import AsyncDatabase

from fragmenty_ingest.store import BatchDocuments, IngestStore
from fragmenty_shared.settings import Settings
from fragmenty_shared.storage import insert_new
from fragmenty_shared.topology import Topology
from tests.integration.ingest.harness import (
    EventTap,
    Expected,
    assert_database_matches,
    assert_published_at_least_once,
    ingest_settings,
    running_ingest,
    stream,
)


async def test_a_half_applied_batch_is_redone_with_exact_rollups_and_each_event_once(
    settings: Settings,
    topology: Topology,
    broker: RabbitBroker,
    mongo_db: AsyncDatabase[dict[str, Any]],
) -> None:
    messages = stream(30, price_changes=10, sold=5)
    expected = Expected.of(messages)
    plan = expected.plan
    store = IngestStore(mongo_db)
    # What a crash leaves: the outbox written (two documents), the first one's event block
    # stored, the rollups already incremented once, no listing written, nothing published.
    half = len(plan.outbox) // 2
    first = BatchDocuments.of(plan.outbox[:half], 0)
    second = BatchDocuments.of(plan.outbox[half:], first.last_seq or 0)
    await store.write_outbox(first)
    await store.write_outbox(second)
    await insert_new(store.event_log, first.blocks)
    await store._increment_rollups(plan.rollup_deltas())
    assert await mongo_db.listings.count_documents({}) == 0

    tap = EventTap(broker, topology)
    await tap.declare()
    try:
        async with running_ingest(ingest_settings(settings)):
            pass  # recovery runs before ingest reports ready
        received = await tap.drain()
    finally:
        await tap.delete()
    await assert_database_matches(mongo_db, expected)  # rollups exact: not incremented twice
    assert_published_at_least_once(received, expected)
