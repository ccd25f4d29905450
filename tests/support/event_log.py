"""Storing events as ingest does, for tests of the readers: positions after the newest, one block."""

from __future__ import annotations

from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from fragmenty_ingest.store import IngestStore
from fragmenty_shared.contracts import PriceEvent
from fragmenty_shared.event_log import EventLogReader, block_document
from fragmenty_shared.schema import Collections
from fragmenty_shared.storage import event_to_document, listing_id


async def store_events(
    database: AsyncDatabase[dict[str, Any]],
    *events: PriceEvent,
    with_history: bool = False,
    **extra_fields: Any,
) -> list[PriceEvent]:
    """Append ``events`` to the event log (one block); returns them with their positions.

    ``with_history`` also adds them to their listings' history documents, with ingest's own
    code. ``extra_fields`` are added to every stored document (a writer's bookkeeping, which
    readers must read past).
    """
    if not events:
        return []
    last = await EventLogReader(database).last_seq()
    numbered = [event.model_copy(update={"seq": last + 1 + i}) for i, event in enumerate(events)]
    documents = [{**event_to_document(event), **extra_fields} for event in numbered]
    await database[Collections.EVENT_LOG].insert_one(block_document(documents, last))
    if with_history:
        entries = [
            {"listing_id": listing_id(e.asset, e.slug), "event": d}
            for e, d in zip(numbered, documents, strict=True)
        ]
        await IngestStore(database).append_history(entries)
    return numbered
