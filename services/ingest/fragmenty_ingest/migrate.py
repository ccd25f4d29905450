"""``fragmenty-ingest migrate``: upgrade a database of schema 1 to schema 2, in place.

Schema 1 kept every event in ``events`` and every change in ``price_history``, one document
each, so every reader's cost grew with all the history ever stored. Schema 2 (see
:mod:`fragmenty_shared.schema`) keeps the same facts in bounded places. The migration:

1. reads ``events`` once, in event-id order (the order schema 1 served), and gives each event a
   position after the counter's current value (the base is recorded on the first run, so a
   resumed run gives the same positions);
2. writes them as event-log blocks: the newest into ``event_log`` (the window), the rest into
   ``event_archive``; and each listing's events as its history document (older rows beyond
   ingest's setting into ``history_archive``);
3. computes every past day's close (``daily_close``) by replaying the changes in time order;
4. marks the existing ``daily_rollups`` as counting every migrated event (``applied_seq``);
5. records the first observation, moves the position counter past the migrated events, and only then
   drops ``events`` and ``price_history`` and records schema 2.

Every write has a deterministic ``_id`` and is skipped when it exists, so a run that stops
halfway is finished by running it again; on a database already at schema 2 it does nothing.
Run it with ingest stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pymongo import ReplaceOne
from pymongo.asynchronous.database import AsyncDatabase

from fragmenty_ingest.closes import HistoryChange, closes_from_history
from fragmenty_ingest.settings import IngestSettings
from fragmenty_ingest.store import DEFAULT_HISTORY_ROWS
from fragmenty_shared.event_log import block_document
from fragmenty_shared.listing_history import (
    archive_block_id,
    encode_rows,
    history_document,
    split_history,
)
from fragmenty_shared.logs import configure_logging
from fragmenty_shared.money import to_nanoton
from fragmenty_shared.schema import (
    FIRST_OBSERVED_ID,
    SCHEMA_VERSION,
    SCHEMA_VERSION_ID,
    SEQ_COUNTER_ID,
    Collections,
    history_collection,
)
from fragmenty_shared.storage import event_from_document, insert_new, listing_id, make_mongo_client

logger = logging.getLogger(__name__)

Document = dict[str, Any]

MIGRATION_ID = "migration_2"  # ingest_meta: the base position of a migration under way
BLOCK_EVENTS = 1_000  # events per migrated block
_LEGACY_ONLY_FIELDS = ("rollup_key",)


@dataclass
class StoredDocuments:
    """Schema-2 documents for a sequence of events, in the order they were recorded."""

    window_blocks: list[Document] = field(default_factory=list)
    archive_blocks: list[Document] = field(default_factory=list)
    history: dict[str, list[Document]] = field(default_factory=dict)  # partition -> documents
    history_archive: list[Document] = field(default_factory=list)
    closes: list[Document] = field(default_factory=list)
    last_seq: int = 0


def stored_documents(
    events: Sequence[Document],
    *,
    first_seq: int,
    window_events: int,
    history_rows: int = DEFAULT_HISTORY_ROWS,
) -> StoredDocuments:
    """What ingest would have stored for ``events`` (event documents, in recorded order)."""
    out = StoredDocuments()
    numbered = [
        {**{k: v for k, v in event.items() if k not in _LEGACY_ONLY_FIELDS}, "seq": first_seq + n}
        for n, event in enumerate(events)
    ]
    out.last_seq = first_seq + len(numbered) - 1 if numbered else first_seq - 1
    window_start = max(0, len(numbered) - window_events)
    prev_seq = first_seq - 1
    for start in range(0, len(numbered), BLOCK_EVENTS):
        chunk = numbered[start : start + BLOCK_EVENTS]
        block = block_document(chunk, prev_seq)
        (out.window_blocks if start + len(chunk) > window_start else out.archive_blocks).append(
            block
        )
        prev_seq = chunk[-1]["seq"]
    by_listing: dict[str, list[Document]] = {}
    for event in numbered:
        by_listing.setdefault(listing_id(event["asset"], event["slug"]), []).append(event)
    for key, rows in by_listing.items():
        kept, blocks = split_history(rows, history_rows)
        archived: list[str] = []
        for older in blocks:
            block_id = archive_block_id(key, older)
            out.history_archive.append({"_id": block_id, "rows": encode_rows(older)})
            archived.append(block_id)
        out.history.setdefault(history_collection(key), []).append(
            history_document(key, kept, archived)
        )
    out.closes = list(closes_from_history(_changes_in_time_order(numbered)))
    return out


def _changes_in_time_order(events: Iterable[Document]) -> list[HistoryChange]:
    changes = []
    for document in events:
        event = event_from_document(document)
        state = event.new or event.old
        changes.append(
            HistoryChange(
                listing_id=listing_id(event.asset, event.slug),
                at=event.occurred_at,
                type=event.type.value,
                status=None if state is None else state.status.value,
                price_nanoton=None if state is None else to_nanoton(state.price_ton),
            )
        )
    return sorted(changes, key=lambda change: change.at)


async def write_stored_documents(database: AsyncDatabase[Document], docs: StoredDocuments) -> None:
    """Insert what :func:`stored_documents` built; what exists already is left as it is."""
    await insert_new(database[Collections.EVENT_ARCHIVE], docs.archive_blocks)
    await insert_new(database[Collections.EVENT_LOG], docs.window_blocks)
    await insert_new(database[Collections.HISTORY_ARCHIVE], docs.history_archive)
    for name, documents in docs.history.items():
        await insert_new(database[name], documents)
    closes = database[Collections.DAILY_CLOSE]
    for start in range(0, len(docs.closes), 50):
        chunk = docs.closes[start : start + 50]
        await closes.bulk_write([ReplaceOne({"_id": c["_id"]}, c, upsert=True) for c in chunk])


@dataclass(frozen=True)
class MigrationReport:
    already_current: bool
    events: int = 0
    listings_with_history: int = 0
    closes: int = 0
    last_seq: int = 0


async def migrate(
    database: AsyncDatabase[Document],
    *,
    window_events: int,
    history_rows: int = DEFAULT_HISTORY_ROWS,
) -> MigrationReport:
    """Upgrade ``database`` to schema 2; idempotent and resumable (see the module docstring)."""
    meta = database[Collections.INGEST_META]
    version = await meta.find_one({"_id": SCHEMA_VERSION_ID})
    names = set(await database.list_collection_names())
    legacy = {Collections.LEGACY_EVENTS, Collections.LEGACY_PRICE_HISTORY} & names
    if (version is not None and int(version["value"]) >= SCHEMA_VERSION) or not legacy:
        await meta.update_one(
            {"_id": SCHEMA_VERSION_ID}, {"$max": {"value": SCHEMA_VERSION}}, upsert=True
        )
        return MigrationReport(already_current=True)

    # One read of the legacy events (FerretDB scans for any query: once, not per chunk).
    events = [
        document async for document in database[Collections.LEGACY_EVENTS].find({}, batch_size=2000)
    ]
    events.sort(key=lambda document: str(document["_id"]))
    base = await _migration_base(database)
    docs = stored_documents(
        events, first_seq=base + 1, window_events=window_events, history_rows=history_rows
    )
    await write_stored_documents(database, docs)
    await database[Collections.DAILY_ROLLUPS].update_many(
        {"applied_seq": {"$exists": False}}, {"$set": {"applied_seq": docs.last_seq}}
    )
    if events:
        first = min(event["occurred_at"] for event in events)
        await meta.update_one({"_id": FIRST_OBSERVED_ID}, {"$min": {"value": first}}, upsert=True)
    await meta.update_one({"_id": SEQ_COUNTER_ID}, {"$max": {"value": docs.last_seq}}, upsert=True)
    for name in legacy:
        await database.drop_collection(name)
    await meta.update_one(
        {"_id": SCHEMA_VERSION_ID}, {"$max": {"value": SCHEMA_VERSION}}, upsert=True
    )
    await meta.delete_one({"_id": MIGRATION_ID})
    return MigrationReport(
        already_current=False,
        events=len(events),
        listings_with_history=sum(len(documents) for documents in docs.history.values()),
        closes=len(docs.closes),
        last_seq=docs.last_seq,
    )


async def _migration_base(database: AsyncDatabase[Document]) -> int:
    """The position after which the migrated events go: the counter's value at the first run."""
    meta = database[Collections.INGEST_META]
    started = await meta.find_one({"_id": MIGRATION_ID})
    if started is not None:
        return int(started["base"])
    counter = await meta.find_one({"_id": SEQ_COUNTER_ID})
    base = 0 if counter is None else int(counter["value"])
    await meta.insert_one({"_id": MIGRATION_ID, "base": base})
    return base


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="fragmenty-ingest migrate",
        description="Upgrade the database (FRAGMENTY_MONGODB_URL, FRAGMENTY_MONGODB_DATABASE) "
        "to the current schema, in place. Idempotent: run it again to finish an interrupted "
        "run; on a current database it does nothing. Stop ingest first.",
    )
    parser.parse_args(argv)
    settings = IngestSettings()
    configure_logging("ingest", level=settings.log_level, json_lines=settings.log_json)

    async def run() -> MigrationReport:
        client = make_mongo_client(settings.mongodb_url)
        try:
            return await migrate(
                client[settings.mongodb_database],
                window_events=settings.ingest_event_window,
                history_rows=settings.ingest_history_rows,
            )
        finally:
            await client.close()

    report = asyncio.run(run())
    if report.already_current:
        print("the database is already at the current schema; nothing to do")
    else:
        print(
            f"migrated {report.events} events (positions up to {report.last_seq}), "
            f"{report.listings_with_history} listings' histories, {report.closes} daily closes"
        )
