"""The database side of ingest: bulk writes of a batch's plan, the outbox, and crash repair.

Every write is idempotent or guarded: inserts have deterministic ``_id``s (a replay's duplicates
are skipped), listings are set only when not newer, and rollup increments are guarded by the
event positions they already count (see :mod:`fragmenty_ingest.rollups`). So the relay redoes a
batch a crash interrupted with the same writes as the first time, and nothing is recomputed.
Only operations that both MongoDB and FerretDB 1.x support are used.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import bson
from bson import Binary
from pymongo import ASCENDING, ReplaceOne, ReturnDocument, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

from fragmenty_ingest.plan import WritePlan
from fragmenty_ingest.rollups import RollupDelta, key_fields
from fragmenty_ingest.state import ListingState, state_from_document
from fragmenty_shared.event_log import (
    SEQ_COUNTER_ID,
    BlockInfo,
    block_document,
    merged_block,
)
from fragmenty_shared.listing_history import (
    archive_block_id,
    decode_rows,
    encode_rows,
    history_document,
    split_history,
)
from fragmenty_shared.schema import (
    COLLECTIONS,
    FIRST_OBSERVED_ID,
    Collections,
    history_collection,
)
from fragmenty_shared.storage import (
    ensure_indexes,
    event_from_document,
    insert_new,
    insert_returning_duplicates,
)

UPDATE_CHUNK = 50  # statements per update command (see _bulk_update)
# Largest blob of entries in one outbox document: half MongoDB's 16 MiB document limit. An
# entry is 1-2 KB, but one from an item page carries its bid and ownership histories (up to
# the 1 MB a message may hold), so a batch may need more than one document.
MAX_OUTBOX_BLOB_BYTES = 8 * 1024 * 1024
# Positions reserved in ingest_meta at a time: one counter write per this many events.
SEQ_RESERVATION = 10_000

Document = dict[str, Any]


DEFAULT_HISTORY_ROWS = 200


@dataclass(frozen=True, slots=True)
class EventWindow:
    """How many events the recent window keeps, and how many go to an archive block at once."""

    # FerretDB parses every byte of a collection it reads: the window is kept small in bytes
    # (2,000 events, about 1.5 MB) and still holds far more than a resume usually needs.
    keep_events: int = 2_000
    archive_block_events: int = 1_000


def _chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def outbox_groups(entries: Sequence[Document]) -> list[list[tuple[Document, bytes]]]:
    """Entries with their BSON, split into outbox documents: a new one when a blob would pass
    the limit (each entry is encoded once, for its size and for the blob)."""
    groups: list[list[tuple[Document, bytes]]] = [[]]
    size = 0
    for entry in entries:
        encoded = bson.encode(entry)
        if groups[-1] and size + len(encoded) > MAX_OUTBOX_BLOB_BYTES:
            groups.append([])
            size = 0
        groups[-1].append((entry, encoded))
        size += len(encoded)
    return [group for group in groups if group]


@dataclass(frozen=True, slots=True)
class BatchDocuments:
    """A batch as documents: per outbox document, the event-log block with the same events."""

    outbox: list[Document]
    blocks: list[Document]

    @classmethod
    def of(cls, entries: Sequence[Document], prev_seq: int) -> BatchDocuments:
        """``prev_seq``: the last position of the block written before this batch."""
        outbox: list[Document] = []
        blocks: list[Document] = []
        for group in outbox_groups(entries):
            first, last = group[0][0], group[-1][0]
            blob = b"".join(encoded for _, encoded in group)
            outbox.append({"_id": first["_id"], "prev_seq": prev_seq, "entries": Binary(blob)})
            blocks.append(block_document([entry["event"] for entry, _ in group], prev_seq))
            prev_seq = last["event"]["seq"]
        return cls(outbox, blocks)

    @property
    def last_seq(self) -> int | None:
        return self.blocks[-1]["last_seq"] if self.blocks else None


class IngestStore:
    """Ingest's reads and writes, over one database."""

    def __init__(
        self,
        database: AsyncDatabase[Document],
        window: EventWindow | None = None,
        *,
        history_rows: int = DEFAULT_HISTORY_ROWS,
    ) -> None:
        self._db = database
        self.listings = database[Collections.LISTINGS]
        self.history_archive = database[Collections.HISTORY_ARCHIVE]
        self._history_rows = history_rows
        self.event_log = database[Collections.EVENT_LOG]
        self.event_archive = database[Collections.EVENT_ARCHIVE]
        self.outbox = database[Collections.OUTBOX]
        self.census = database[Collections.CENSUS]
        self.rollups = database[Collections.DAILY_ROLLUPS]
        self.closes = database[Collections.DAILY_CLOSE]
        self.meta = database[Collections.INGEST_META]
        self._window_policy = window or EventWindow()
        self._window: list[BlockInfo] = []  # the event_log blocks, oldest first
        self._archived_through = 0  # the last position in the archive
        self.writes = 0  # documents written (inserted, upserted or updated), for the benchmark

    async def ping(self) -> None:
        await self._db.command("ping")

    async def ensure_indexes(self) -> None:
        """Create the indexes of the collections ingest writes (idempotent)."""
        await ensure_indexes(self._db, COLLECTIONS)

    async def load_states(self) -> dict[str, ListingState]:
        """Every stored listing's state, to warm ingest's memory at start."""
        states: dict[str, ListingState] = {}
        async for document in self.listings.find({}):
            states[document["_id"]] = state_from_document(document)
        return states

    # --- event positions ----------------------------------------------------------------------

    async def reserve_positions(self, count: int) -> int:
        """Reserve ``count`` more positions; returns the highest position reserved now.

        One small counter document (ingest_meta), incremented atomically: positions reserved
        by a process that then died are never handed out again.
        """
        document = await self.meta.find_one_and_update(
            {"_id": SEQ_COUNTER_ID},
            {"$inc": {"value": count}},
            upsert=True,
            return_document=ReturnDocument.AFTER,
        )
        assert document is not None
        return int(document["value"])

    async def load_event_window(self) -> int:
        """Read what the window holds (not the events); returns the last stored position."""
        blocks = [
            BlockInfo.of(document)
            async for document in self.event_log.find({}, {"events": 0}).sort("_id", ASCENDING)
        ]
        self._window = blocks
        if blocks:  # the blocks chain: the window starts right after the archive's end
            self._archived_through = blocks[0].prev_seq
            return blocks[-1].last_seq
        # An empty window (nothing stored yet, or a window setting of zero before): the archive.
        newest = await self.event_archive.find_one({}, {"events": 0}, sort=[("_id", -1)])
        self._archived_through = 0 if newest is None else int(newest["last_seq"])
        return self._archived_through

    async def first_observed(self) -> datetime | None:
        """The earliest change recorded (days before it are back-filled: their sales were read
        later from Fragment's list of recent sales, not seen as they happened)."""
        document = await self.meta.find_one({"_id": FIRST_OBSERVED_ID})
        return None if document is None else document["value"]

    async def note_first_observed(self, moment: datetime) -> None:
        await self.meta.update_one(
            {"_id": FIRST_OBSERVED_ID}, {"$min": {"value": moment}}, upsert=True
        )

    # --- the normal path ----------------------------------------------------------------------

    async def write_outbox(self, batch: BatchDocuments) -> list[str]:
        """Store a batch's outbox documents; returns their ids.

        A batch is one document (``_id`` = its first event id, so a retried insert is
        recognised) whose entries are one BSON blob. Nobody queries inside the outbox, and
        FerretDB, which keeps documents as JSON, rebuilds every document it matches: deleting a
        batch of 500 entry documents by ``_id: {$in: [...]}`` took about 200 ms, and the same
        entries as nested fields of one document 90 ms to insert and 150 ms to delete; as one
        binary field, 16 ms and 20 ms (20,000 listings: 9.5 s of outbox work became 1.5 s).
        """
        self.writes += await insert_new(self.outbox, batch.outbox)
        return [document["_id"] for document in batch.outbox]

    async def apply(self, plan: WritePlan, batch: BatchDocuments) -> None:
        """Write a batch's effects (its outbox documents must already be durable)."""
        await self._append_blocks(batch.blocks)
        await self.append_history(plan.outbox, plan.new_listing_ids)
        await self._set_listings(plan.listing_sets, plan.new_listing_ids)
        await self._increment_rollups(plan.rollup_deltas())
        await self._bulk_update(
            self.closes, [ReplaceOne({"_id": c["_id"]}, c, upsert=True) for c in plan.closes]
        )
        if plan.first_observed is not None:
            await self.note_first_observed(plan.first_observed)
        # Last: a census document says its crawl's effects are all written.
        self.writes += await insert_new(self.census, plan.census)

    async def delete_outbox(self, document_ids: Iterable[str]) -> None:
        for document_id in document_ids:  # one by one: `_id` equality is what FerretDB indexes
            await self.outbox.delete_one({"_id": document_id})

    async def _append_blocks(self, blocks: Sequence[Document]) -> None:
        """Add blocks to the event log's window, then move what left the window to the archive."""
        # A leftover outbox document whose block has already moved on to the archive.
        blocks = [block for block in blocks if block["last_seq"] > self._archived_through]
        if not blocks:
            return
        self.writes += await insert_new(self.event_log, blocks)
        known = {block.id for block in self._window}
        self._window += [BlockInfo.of(block) for block in blocks if block["_id"] not in known]
        self._window.sort(key=lambda block: block.id)
        await self._archive_old_blocks()

    async def _archive_old_blocks(self) -> None:
        """Merge the oldest window blocks into one archive block once enough left the window.

        The archive block is inserted before the window blocks are deleted, and readers read
        the window first: a block being moved is always found in one of the two.
        """
        policy = self._window_policy
        in_window = sum(block.count for block in self._window)
        if in_window < policy.keep_events + policy.archive_block_events:
            return
        moving: list[BlockInfo] = []
        moved = 0
        while moved < policy.archive_block_events:
            block = self._window[len(moving)]
            moving.append(block)
            moved += block.count
        ids = [block.id for block in moving]
        documents = [
            document
            async for document in self.event_log.find({"_id": {"$in": ids}}).sort("_id", ASCENDING)
        ]
        if len(documents) == len(ids):
            self.writes += await insert_new(self.event_archive, [merged_block(documents)])
        await self.event_log.delete_many({"_id": {"$in": ids}})
        self._window = self._window[len(moving) :]
        self._archived_through = moving[-1].last_seq

    async def append_history(
        self, entries: Sequence[Document], new_listing_ids: Collection[str] = ()
    ) -> None:
        """Add the entries' events to their listings' history documents.

        A new listing's document is inserted; a known one is read, extended with the events
        it does not hold yet (position above its ``last_seq``: a replay adds nothing), cut to
        the newest ``history_rows`` (the rest goes to an archive block first) and replaced.
        """
        by_listing: dict[str, list[Document]] = {}
        for entry in entries:
            by_listing.setdefault(entry["listing_id"], []).append(entry["event"])
        partitions: dict[str, list[str]] = {}
        for key in by_listing:
            partitions.setdefault(history_collection(key), []).append(key)
        for name, keys in partitions.items():
            collection = self._db[name]
            fresh = [
                history_document(key, by_listing[key][-self._history_rows :])
                for key in keys
                if key in new_listing_ids and len(by_listing[key]) <= self._history_rows
            ]
            duplicates = await insert_returning_duplicates(collection, fresh) if fresh else []
            self.writes += len(fresh) - len(duplicates)
            inserted = {document["_id"] for document in fresh} - set(duplicates)
            known = [key for key in keys if key not in inserted]
            if not known:
                continue
            stored = {
                document["_id"]: document
                async for document in collection.find({"_id": {"$in": known}})
            }
            operations = []
            archive_blocks: list[Document] = []
            for key in known:
                extended = self._extended_history(key, stored.get(key), by_listing[key])
                if extended is not None:
                    document, blocks = extended
                    archive_blocks += blocks
                    operations.append(ReplaceOne({"_id": key}, document, upsert=True))
            if archive_blocks:  # archived before the documents stop holding their rows
                self.writes += await insert_new(self.history_archive, archive_blocks)
            await self._bulk_update(collection, operations)

    def _extended_history(
        self, listing_id: str, stored: Document | None, events: Sequence[Document]
    ) -> tuple[Document, list[Document]] | None:
        """The history document with ``events`` added and the archive blocks it cut off;
        None when it holds them all already."""
        last_seq = 0 if stored is None else int(stored.get("last_seq", 0))
        added = [event for event in events if event["seq"] > last_seq]
        if not added:
            return None
        rows = ([] if stored is None else decode_rows(stored)) + added
        archived = [] if stored is None else list(stored.get("archived") or ())
        kept, cut = split_history(rows, self._history_rows)
        blocks = [
            {"_id": archive_block_id(listing_id, old), "rows": encode_rows(old)} for old in cut
        ]
        archived += [block["_id"] for block in blocks]
        return history_document(listing_id, kept, archived), blocks

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
        self,
        collection: AsyncCollection[Document],
        operations: Sequence[UpdateOne | ReplaceOne[Document]],
    ) -> None:
        # Small bulks: FerretDB 1.24 scans per update, and an update command with ~100
        # statements stalled it for minutes in our measurements, while 50 take milliseconds.
        for chunk in _chunks(operations, UPDATE_CHUNK):
            await collection.bulk_write(list(chunk), ordered=False)
            self.writes += len(chunk)

    async def _increment_rollups(self, deltas: dict[str, RollupDelta]) -> None:
        """Add each delta to its rollup unless the rollup already counts it (``applied_seq``).

        The rollups of the batch's days are read first (one query on a collection of a few
        documents per day) and those that already count their delta are left alone; the
        guard in each update's filter says the same to the server. (A guard that fails on an
        upsert is a duplicate key, which FerretDB 1.24 reports in a reply pymongo cannot read.)
        """
        if not deltas:
            return
        applied = {
            document["_id"]: int(document.get("applied_seq", 0))
            async for document in self.rollups.find(
                {"_id": {"$in": list(deltas)}}, {"applied_seq": 1}
            )
        }
        operations = [
            UpdateOne(
                delta.guard(key),
                _with_key_fields(delta.increment_update(), key),
                upsert=True,
            )
            for key, delta in deltas.items()
            if applied.get(key, -1) < delta.last_seq
        ]
        await self._bulk_update(self.rollups, operations)

    # --- crash repair -------------------------------------------------------------------------

    async def pending_outbox(self, limit: int) -> list[Document]:
        """Outbox documents (batches) in event order; none of it was confirmed published."""
        return [entry async for entry in self.outbox.find({}).sort("_id", ASCENDING).limit(limit)]

    def outbox_entries(self, document: Document) -> list[Document]:
        """The entries an outbox document holds, decoded as the client decodes documents."""
        return bson.decode_all(document["entries"], codec_options=self.outbox.codec_options)

    async def redo(self, documents: Sequence[Document]) -> list[Document]:
        """Finish the effects of outbox documents a crash may have interrupted; idempotent.

        The same writes as the first time: the event-log block of each outbox document (same
        ``_id``), history rows, listings only where not newer, and rollup increments that their
        guard skips where they were applied. Returns the entries.
        """
        blocks: list[Document] = []
        entries: list[Document] = []
        deltas: list[dict[str, RollupDelta]] = []  # per outbox document, as first applied
        for document in documents:
            own = self.outbox_entries(document)
            entries += own
            blocks.append(
                block_document([entry["event"] for entry in own], int(document.get("prev_seq", 0)))
            )
            deltas.append({})
            for entry in own:
                deltas[-1].setdefault(entry["rollup_key"], RollupDelta()).add(
                    event_from_document(entry["event"])
                )
        await self._append_blocks(blocks)
        await self.append_history(entries)
        await self._redo_listings(entries)
        # One document at a time, in order: a guard compares with the positions of one batch
        # (or part of one), never with a later batch's.
        for document_deltas in deltas:
            await self._increment_rollups(document_deltas)
        return entries

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


def _with_key_fields(update: Document, key: str) -> Document:
    return {**update, "$set": {**update.get("$set", {}), **key_fields(key)}}
