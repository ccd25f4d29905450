"""The database side of ingest: bulk writes of a batch's plan, the outbox, and crash repair.

Every write is idempotent except the rollups' ``$inc``; those are applied once in the normal
path and *recomputed* from the ``events`` collection whenever a batch has to be redone (after a
crash, or a database error halfway through), so rollups are never doubled nor lost.
Only operations that both MongoDB and FerretDB 1.x support are used.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from typing import Any

import bson
from bson import Binary
from pymongo import ASCENDING, DESCENDING, IndexModel, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

from fragmenty_ingest.plan import WritePlan
from fragmenty_ingest.rollups import RollupDelta, key_fields
from fragmenty_ingest.state import ListingState, state_from_document
from fragmenty_shared.storage import Collections, event_from_document

DUPLICATE_KEY = 11000
WRITE_CHUNK = 1000  # documents per insert: large enough to amortise, small enough to retry
UPDATE_CHUNK = 50  # statements per update command (see _bulk_update)
# Largest blob of entries in one outbox document: half MongoDB's 16 MiB document limit. An
# entry is 1-2 KB, but one from an item page carries its bid and ownership histories (up to
# the 1 MB a message may hold), so a batch may need more than one document.
MAX_OUTBOX_BLOB_BYTES = 8 * 1024 * 1024

Document = dict[str, Any]

INDEXES: dict[str, list[IndexModel]] = {
    # The api filters and sorts listings by these; a compound index per common pairing.
    Collections.LISTINGS: [
        IndexModel([("status", ASCENDING), ("price_nanoton", ASCENDING)]),
        IndexModel([("asset", ASCENDING), ("status", ASCENDING)]),
        IndexModel([("price_nanoton", ASCENDING)]),
        IndexModel([("ends_at", ASCENDING)]),
        IndexModel([("memorability", DESCENDING)]),
        IndexModel([("changed_at", DESCENDING)]),
    ],
    Collections.PRICE_HISTORY: [IndexModel([("listing_id", ASCENDING), ("at", ASCENDING)])],
    # Events are read in _id order (the id sorts by time); rollup_key serves crash repair.
    Collections.EVENTS: [
        IndexModel([("rollup_key", ASCENDING)]),
        IndexModel([("asset", ASCENDING), ("type", ASCENDING)]),
    ],
    Collections.DAILY_ROLLUPS: [IndexModel([("day", ASCENDING), ("asset", ASCENDING)])],
    Collections.CENSUS: [IndexModel([("completed_at", DESCENDING)])],
}


def _chunks(items: Sequence[Any], size: int = WRITE_CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


async def insert_returning_duplicates(
    collection: AsyncCollection[Document], documents: Sequence[Document]
) -> list[str]:
    """Insert documents whose ``_id`` may already exist (a replay); those are skipped.

    Returns the ids that already existed. Any error other than a duplicate key is raised.
    """
    duplicates: list[str] = []
    for chunk in _chunks(documents):
        try:
            await collection.insert_many(list(chunk), ordered=False)
        except BulkWriteError as error:
            errors = error.details.get("writeErrors", [])
            if any(item.get("code") != DUPLICATE_KEY for item in errors):
                raise
            duplicates += [chunk[item["index"]]["_id"] for item in errors]
    return duplicates


async def insert_new(collection: AsyncCollection[Document], documents: Sequence[Document]) -> int:
    """Insert documents, skipping those whose ``_id`` exists; returns how many were new."""
    return len(documents) - len(await insert_returning_duplicates(collection, documents))


def _outbox_documents(entries: Sequence[Document]) -> list[Document]:
    """Entries as outbox documents: each a blob of the entries' BSON, one after the other,
    with the ``_id`` of its first entry; a new document when a blob would pass the limit."""
    groups: list[list[tuple[str, bytes]]] = [[]]
    size = 0
    for entry in entries:
        blob = bson.encode(entry)
        if groups[-1] and size + len(blob) > MAX_OUTBOX_BLOB_BYTES:
            groups.append([])
            size = 0
        groups[-1].append((entry["_id"], blob))
        size += len(blob)
    return [
        {"_id": group[0][0], "entries": Binary(b"".join(blob for _, blob in group))}
        for group in groups
        if group
    ]


class IngestStore:
    """Ingest's reads and writes, over one database."""

    def __init__(self, database: AsyncDatabase[Document]) -> None:
        self._db = database
        self.listings = database[Collections.LISTINGS]
        self.price_history = database[Collections.PRICE_HISTORY]
        self.events = database[Collections.EVENTS]
        self.outbox = database[Collections.OUTBOX]
        self.census = database[Collections.CENSUS]
        self.rollups = database[Collections.DAILY_ROLLUPS]
        self.writes = 0  # documents written (inserted, upserted or updated), for the benchmark

    async def ping(self) -> None:
        await self._db.command("ping")

    async def ensure_indexes(self) -> None:
        """Create the indexes; a second call is a no-op (same names, same keys).

        One index per call: FerretDB 1.24 drops the connection (a server panic) when a single
        createIndexes command names several indexes that already exist.
        """
        for name, indexes in INDEXES.items():
            for index in indexes:
                await self._db[name].create_indexes([index])

    async def load_states(self) -> dict[str, ListingState]:
        """Every stored listing's state, to warm ingest's memory at start."""
        states: dict[str, ListingState] = {}
        async for document in self.listings.find({}):
            states[document["_id"]] = state_from_document(document)
        return states

    # --- the normal path ----------------------------------------------------------------------

    async def write_outbox(self, entries: Sequence[Document]) -> list[str]:
        """Store a batch's outbox entries; returns the ids of the outbox documents holding them.

        A batch is one document (``_id`` = its first event id, so a retried insert is
        recognised) whose entries are one BSON blob. Nobody queries inside the outbox, and
        FerretDB, which keeps documents as JSON, rebuilds every document it matches: deleting a
        batch of 500 entry documents by ``_id: {$in: [...]}`` took about 200 ms, and the same
        entries as nested fields of one document 90 ms to insert and 150 ms to delete; as one
        binary field, 16 ms and 20 ms (20,000 listings: 9.5 s of outbox work became 1.5 s).
        """
        documents = _outbox_documents(entries)
        self.writes += await insert_new(self.outbox, documents)
        return [document["_id"] for document in documents]

    async def apply(self, plan: WritePlan, *, exact_rollups: bool) -> None:
        """Write a batch's effects (the outbox entries must already be durable).

        ``exact_rollups`` recomputes the touched rollups instead of incrementing them: used
        when this batch's increments may already have been applied once.
        """
        self.writes += await insert_new(self.events, plan.event_documents)
        self.writes += await insert_new(self.price_history, plan.history_documents)
        await self._set_listings(plan.listing_sets, plan.new_listing_ids)
        self.writes += await insert_new(self.census, plan.census)
        deltas = plan.rollup_deltas()
        if exact_rollups:
            await self.recompute_rollups(deltas)
        else:
            await self._increment_rollups(deltas)

    async def delete_outbox(self, document_ids: Iterable[str]) -> None:
        for document_id in document_ids:  # one by one: `_id` equality is what FerretDB indexes
            await self.outbox.delete_one({"_id": document_id})

    async def _set_listings(
        self, listing_sets: dict[str, Document], new_ids: Collection[str] = ()
    ) -> None:
        """New listings are inserted (cheap everywhere); known ones get ``$set`` updates.

        A "new" listing that already exists (a retried batch) falls back to an update.
        """
        fresh = [{"_id": key, **listing_sets[key]} for key in listing_sets if key in new_ids]
        existing = [key for key in listing_sets if key not in new_ids]
        if fresh:
            duplicates = await insert_returning_duplicates(self.listings, fresh)
            self.writes += len(fresh) - len(duplicates)
            existing += duplicates
        operations = [
            UpdateOne({"_id": key}, {"$set": listing_sets[key]}, upsert=True) for key in existing
        ]
        await self._bulk_update(self.listings, operations)

    async def _bulk_update(
        self, collection: AsyncCollection[Document], operations: Sequence[UpdateOne]
    ) -> None:
        # Small bulks: FerretDB 1.24 scans per update, and an update command with ~100
        # statements stalled it for minutes in our measurements, while 50 take milliseconds.
        for chunk in _chunks(operations, UPDATE_CHUNK):
            await collection.bulk_write(list(chunk), ordered=False)
            self.writes += len(chunk)

    async def _increment_rollups(self, deltas: dict[str, RollupDelta]) -> None:
        operations = [
            UpdateOne(
                {"_id": key}, {**delta.increment_update(), "$set": key_fields(key)}, upsert=True
            )
            for key, delta in deltas.items()
        ]
        await self._bulk_update(self.rollups, operations)

    # --- crash repair -------------------------------------------------------------------------

    async def pending_outbox(self, limit: int) -> list[Document]:
        """Outbox documents (batches) in event order; none of it was confirmed published."""
        return [entry async for entry in self.outbox.find({}).sort("_id", ASCENDING).limit(limit)]

    def outbox_entries(self, document: Document) -> list[Document]:
        """The entries an outbox document holds, decoded as the client decodes documents."""
        return bson.decode_all(document["entries"], codec_options=self.outbox.codec_options)

    async def redo(self, entries: Sequence[Document]) -> None:
        """Finish the effects of outbox entries a crash may have interrupted; idempotent."""
        self.writes += await insert_new(self.events, [entry["event"] for entry in entries])
        self.writes += await insert_new(self.price_history, [entry["history"] for entry in entries])
        await self._redo_listings(entries)
        keys = {entry["event"]["rollup_key"] for entry in entries}
        await self.recompute_rollups(dict.fromkeys(keys, RollupDelta()))

    async def _redo_listings(self, entries: Sequence[Document]) -> None:
        latest: dict[str, Document] = {}
        for entry in entries:  # in event order: the last entry of a listing is its newest state
            latest.setdefault(entry["listing_id"], {}).update(entry["listing"])
        stored = {
            document["_id"]: document["changed_at"]
            async for document in self.listings.find(
                {"_id": {"$in": list(latest)}}, {"changed_at": 1}
            )
        }
        newer = {
            listing_id: fields
            for listing_id, fields in latest.items()
            # Equal means this write already happened (a later silent fix must not be undone).
            if listing_id not in stored or stored[listing_id] < fields["changed_at"]
        }
        await self._set_listings(newer)

    async def recompute_rollups(self, keys: Iterable[str]) -> None:
        """Rebuild rollups from every stored event that counts in them: exact, repeatable."""
        for key in keys:
            delta = RollupDelta()
            async for document in self.events.find({"rollup_key": key}):
                delta.add(
                    event_from_document({k: v for k, v in document.items() if k != "rollup_key"})
                )
            await self.rollups.replace_one(
                {"_id": key}, {**key_fields(key), **delta.totals()}, upsert=True
            )
            self.writes += 1
