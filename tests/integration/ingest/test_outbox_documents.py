"""The outbox on the real database: a batch's entries as blobs, split before the size limit,
each outbox document with the event-log block of the same events."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from fragmenty_ingest.store import MAX_OUTBOX_BLOB_BYTES, BatchDocuments, IngestStore
from fragmenty_shared.event_log import block_events


def entry(index: int, padding_bytes: int) -> dict[str, Any]:
    """An outbox entry; ``padding_bytes`` stands for an item page's long bid history."""
    return {
        "_id": f"2026-11-20T12:00:00.{index:06d}Z:number:8880000{index:04d}:listed",
        "routing_key": "number.listed",
        "event": {
            "type": "listed",
            "seq": 101 + index,
            "at": datetime(2026, 11, 20, 12, 0, tzinfo=UTC),
        },
        "rollup_key": "2026-11-20:number:auction",
        "listing_id": f"number:8880000{index:04d}",
        "listing": {"details": {"bid_history": "x" * padding_bytes}},
    }


async def test_a_batch_is_one_document_and_comes_back_as_written(
    mongo_db: AsyncDatabase[dict[str, Any]],
) -> None:
    store = IngestStore(mongo_db)
    entries = [entry(index, 100) for index in range(500)]
    batch = BatchDocuments.of(entries, prev_seq=100)
    ids = await store.write_outbox(batch)
    assert ids == [entries[0]["_id"]]
    assert await store.write_outbox(batch) == ids  # a retried insert changes nothing
    stored = await store.pending_outbox(10)
    assert len(stored) == 1
    assert store.outbox_entries(stored[0]) == entries  # datetimes come back tz-aware
    assert stored[0]["prev_seq"] == 100
    [block] = batch.blocks
    assert (block["_id"], block["first_seq"], block["last_seq"], block["count"]) == (
        101,
        101,
        600,
        500,
    )
    assert block_events(block) == [e["event"] for e in entries]
    await store.delete_outbox(ids)
    assert await store.pending_outbox(10) == []


async def test_a_batch_larger_than_the_blob_limit_takes_several_documents(
    mongo_db: AsyncDatabase[dict[str, Any]],
) -> None:
    store = IngestStore(mongo_db)
    # Four entries of a third of the limit each: two fit in a document, the third does not.
    entries = [entry(index, MAX_OUTBOX_BLOB_BYTES // 3) for index in range(4)]
    batch = BatchDocuments.of(entries, prev_seq=100)
    ids = await store.write_outbox(batch)
    assert ids == [entries[0]["_id"], entries[2]["_id"]]
    stored = await store.pending_outbox(10)
    assert [store.outbox_entries(document) for document in stored] == [entries[:2], entries[2:]]
    # The second document's block follows the first one's.
    assert [(b["first_seq"], b["last_seq"], b["prev_seq"]) for b in batch.blocks] == [
        (101, 102, 100),
        (103, 104, 102),
    ]
    await store.delete_outbox(ids)
    assert await store.pending_outbox(10) == []
