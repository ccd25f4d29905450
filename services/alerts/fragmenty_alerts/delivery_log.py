"""The delivery log: a recent log of slot collections, an archive of compressed blocks, pages.

Every attempt's outcome is inserted once into the recent log, the collection of its slot
(``fragmenty_alerts.recent_log``: a collection per 20 s, sealed and archived whole once it has
settled). ``Archiver`` moves each sealed slot into blocks of ``alert_delivery_archive`` (their
BSON, compressed: ``fragmenty_shared.blobs``) that name the accounts they hold, kept for the
retention, and drops the slot. On FerretDB 1.x every query scans the collection it reads and
a delete holds the database while it scans: here no entry is ever deleted, each is read once
to be archived, and the recent log holds only the last minute or so. On MongoDB both are read
through indexes.

**Order.** Newest first means by when the outcome was logged (``finished_at``), then by id: an
entry is logged once, within moments of that time, and lands in that time's slot; slots are
sealed only ``SETTLE`` after they ended. So the archive holds the older part of the log, its
blocks cover ranges that do not overlap, and a page reads the recent collections first and the
archive only for what is left. The cursor is the ``(finished_at, _id)`` of the last entry of
the previous page: a page never repeats or skips one. (An entry logged more than ``SETTLE``
late is archived from a later round: kept, but its block overlaps the slot's earlier ones.)

**Moves.** A sealed slot is never written again, so instances archiving it at once read the
same entries and make the same blocks (named after what they hold): the second copy of a block
is refused. Blocks are inserted before the slot is dropped, so an entry being moved is found
in one or both (readers drop the second copy).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError, OperationFailure

from fragmenty_alerts import recent_log
from fragmenty_alerts.recent_log import SLOT
from fragmenty_alerts.store import AlertsStore, Document
from fragmenty_shared.blobs import pack_documents, unpack_documents
from fragmenty_shared.storage import duplicate_positions

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ZERO = timedelta(0)
BLOCK_ENTRIES = 500
# Blocks a page reads at most (an account with few entries in each): past them the page ends
# early, its cursor at the oldest block read.
MAX_BLOCKS_PER_PAGE = 20
# A sealed slot is read in batches of this many entries, with pauses (see _read_gently).
SEALED_READ_BATCH = 250
READ_PAUSES = 3.0
MAX_READ_PAUSE_S = 0.5
# What a page does not need: the message sent (a retry reads it from the entry itself).
PAGE_PROJECTION = {"message": 0}
NEWEST_FIRST = [("finished_at", DESCENDING), ("_id", DESCENDING)]
OLDEST_FIRST = [("finished_at", ASCENDING), ("_id", ASCENDING)]
Key = tuple[datetime, str]


class DeliveryStatus(StrEnum):
    SENT = "sent"
    FAILED = "failed"
    GAVE_UP = "gave_up"
    SKIPPED = "skipped"
    LOST = "lost"


class BadCursor(ValueError):
    """A cursor this API did not hand out."""


@dataclass(frozen=True)
class Page:
    entries: list[Document]
    next_cursor: str | None


def key_of(entry: Document) -> Key:
    return entry["finished_at"], str(entry["_id"])


def cursor_of(entry: Document) -> str:
    return _cursor(key_of(entry))


def _cursor(key: Key) -> str:
    """``<seconds since the epoch, 6 decimals>|<entry id>``."""
    return f"{key[0].timestamp():.6f}|{key[1]}"


def parse_cursor(cursor: str) -> Key:
    moment, _, entry_id = cursor.partition("|")
    try:
        seconds = float(moment)
    except ValueError:
        seconds = -1.0
    if not entry_id or not 0 <= seconds < 1e11:
        raise BadCursor("not a cursor from this API (use next_cursor of the previous page)")
    # Stored times are whole milliseconds: rebuilt exactly, so the equality below matches.
    return EPOCH + timedelta(milliseconds=round(seconds * 1000)), entry_id


def _recent_query(
    account_id: str, status: DeliveryStatus | None, before: Key | None
) -> dict[str, Any]:
    query: dict[str, Any] = {"account_id": account_id}
    if status is not None:
        query["status"] = status.value
    if before is not None:
        at, entry_id = before
        query["$or"] = [
            {"finished_at": {"$lt": at}},
            {"finished_at": at, "_id": {"$lt": entry_id}},
        ]
    return query


async def read_page(
    store: AlertsStore,
    account_id: str,
    *,
    limit: int,
    status: DeliveryStatus | None = None,
    cursor: str | None = None,
) -> Page:
    """One page of an account's log, newest first; raises ``BadCursor``.

    The recent collection answers one query for ``limit + 1`` entries; only when it has fewer
    (the page reaches past it) are the newest archived blocks holding the account and older
    than the cursor read, one at a time, until the page is full or ``MAX_BLOCKS_PER_PAGE``
    were read (then the page may be short; its cursor goes on from the oldest block read).
    """
    before = parse_cursor(cursor) if cursor is not None else None
    found = await _recent(store, _recent_query(account_id, status, before), limit + 1)
    boundary: Key | None = None
    if len(found) <= limit:
        archived, boundary = await _archived(
            store, account_id, status, before, limit + 1 - len(found), found
        )
        found = sorted(found + archived, key=key_of, reverse=True)
    entries = found[:limit]
    if len(found) > limit:
        return Page(entries, cursor_of(entries[-1]))
    return Page(entries, _cursor(boundary) if boundary is not None else None)


async def _recent(store: AlertsStore, query: dict[str, Any], wanted: int) -> list[Document]:
    """The newest ``wanted`` entries of the recent log matching ``query``: each of its
    collections (a few slots) answers for its own, and the newest of all are kept (an entry
    logged twice, in two slots, once)."""
    found: dict[str, Document] = {}
    for collection in await recent_log.log_collections(store.database):
        for entry in (
            await store.database[collection.name]
            .find(query, PAGE_PROJECTION, sort=NEWEST_FIRST, limit=wanted)
            .to_list(wanted)
        ):
            found.setdefault(str(entry["_id"]), entry)
    return sorted(found.values(), key=key_of, reverse=True)[:wanted]


async def _archived(
    store: AlertsStore,
    account_id: str,
    status: DeliveryStatus | None,
    before: Key | None,
    wanted: int,
    recent: list[Document],
) -> tuple[list[Document], Key | None]:
    """The newest ``wanted`` archived entries of the account older than ``before``, less those
    in ``recent`` (an entry being moved is in both); and, when the page stopped at
    ``MAX_BLOCKS_PER_PAGE`` with older blocks left, the key of the oldest block's first
    entry."""
    query: dict[str, Any] = {"accounts": account_id}
    if before is not None:
        query["first"] = {"$lte": before[0]}
    seen = {entry["_id"] for entry in recent}
    collected: list[Document] = []
    read = 0
    oldest_read: Key | None = None
    boundary: Key | None = None
    blocks = store.delivery_archive.find(query, sort=[("last", DESCENDING)], batch_size=4)
    async for block in blocks:
        if len(collected) >= wanted and block["last"] < key_of(collected[wanted - 1])[0]:
            break
        if read == MAX_BLOCKS_PER_PAGE:
            # Blocks cover ranges that do not overlap: all that is newer than the first entry
            # of the oldest block read has been seen, the rest is for the next page.
            boundary = oldest_read
            break
        read += 1
        # Blocks before slots were named after their first entry alone.
        oldest_read = (block["first"], str(block.get("first_id", block["_id"])))
        for entry in _entries_of(block):
            if (
                entry["account_id"] != account_id
                or (status is not None and entry["status"] != status.value)
                or entry["_id"] in seen
                or (before is not None and key_of(entry) >= before)
            ):
                continue
            seen.add(entry["_id"])
            entry.pop("message", None)
            collected.append(entry)
        collected.sort(key=key_of, reverse=True)
    await blocks.close()
    if boundary is not None and len(collected) >= wanted:
        boundary = None  # the page is full: its own last entry is the cursor
    return collected[:wanted], boundary


def _entries_of(block: Document) -> list[Document]:
    return unpack_documents(block["entries"], where=f"delivery archive {block['_id']}")


def message_of(entry: Document) -> Document:
    """The message an entry logged: a blob of one document (a plain one in older entries)."""
    message = entry["message"]
    if isinstance(message, dict):
        return message
    [unpacked] = unpack_documents(message, where=f"delivery log {entry['_id']}")
    return unpacked


async def find_entry(store: AlertsStore, entry_id: str) -> Document | None:
    """One entry by id, recent or archived (a retry of an old attempt)."""
    for collection in await recent_log.log_collections(store.database):
        entry = await store.database[collection.name].find_one({"_id": entry_id})
        if entry is not None:
            return entry
    block = await store.delivery_archive.find_one({"ids": entry_id})
    if block is None:
        return None
    return next((e for e in _entries_of(block) if e["_id"] == entry_id), None)


async def attempts_made(store: AlertsStore, delivery_id: str) -> int | None:
    """The number of the delivery's newest logged attempt, recent or archived."""
    numbers: list[int] = []
    for collection in await recent_log.log_collections(store.database):
        newest = await store.database[collection.name].find_one(
            {"delivery_id": delivery_id}, {"attempt": 1}, sort=[("attempt", DESCENDING)]
        )
        numbers += [int(newest["attempt"])] if newest else []
    async for block in store.delivery_archive.find({"deliveries": delivery_id}):
        numbers += [
            int(e["attempt"]) for e in _entries_of(block) if e["delivery_id"] == delivery_id
        ]
    return max(numbers, default=None)


def _blocks(entries: list[Document]) -> Iterable[Document]:
    """The entries of a sealed slot in blocks of ``BLOCK_ENTRIES`` consecutive ones, oldest
    first (the last may be shorter: nothing more comes into a sealed slot).

    A block is named after what it holds (its first entry and a digest of its ids): instances
    archiving the same sealed slot make the same blocks, and the second copy is refused."""
    ordered = sorted(entries, key=key_of)
    for start in range(0, len(ordered), BLOCK_ENTRIES):
        part = ordered[start : start + BLOCK_ENTRIES]
        ids = [str(entry["_id"]) for entry in part]
        digest = hashlib.sha256("\n".join(ids).encode()).hexdigest()[:16]
        yield {
            "_id": f"{ids[0]}#{digest}",
            "first": part[0]["finished_at"],
            "first_id": ids[0],
            "last": part[-1]["finished_at"],
            "count": len(part),
            "accounts": sorted({str(entry["account_id"]) for entry in part}),
            "ids": ids,
            "deliveries": sorted({entry["delivery_id"] for entry in part}),
            "entries": pack_documents(part),
        }


class Archiver:
    """Rounds of archiving the recent log (``fragmenty_alerts.recent_log``) of one instance."""

    def __init__(self, store: AlertsStore) -> None:
        self._store = store
        self._prepared: set[str] = set()

    async def round(self, now: datetime) -> int:
        """Seal the slots that settled, archive every sealed one, and make the next slots'
        collections ready; returns how many entries were archived."""
        database = self._store.database
        for collection in await recent_log.log_collections(database):
            if collection.sealed or not collection.settled(now):
                continue
            if collection.slot == 0 and not await recent_log.has_entries(database, collection.name):
                continue  # the bare collection, empty: only the indexes' declaration
            await recent_log.seal(database, collection)
        moved = 0
        for collection in await recent_log.log_collections(database):
            if collection.sealed:
                moved += await self._archive_sealed(collection.name)
        await self._prepare(now)
        return moved

    async def _archive_sealed(self, name: str) -> int:
        sealed = self._store.database[name]
        try:
            entries = await _read_gently(sealed)
        except OperationFailure:
            if not await recent_log.exists(self._store.database, name):
                return 0  # dropped while it was read: another instance archived it
            raise
        # Compressing thousands of entries takes tens of milliseconds: not on the event loop.
        blocks = await asyncio.to_thread(lambda: list(_blocks(entries)))
        if blocks:
            await _insert_new(self._store.delivery_archive, blocks)
        await sealed.drop()
        return len(entries)

    async def _prepare(self, now: datetime) -> None:
        wanted = {recent_log.name_of(recent_log.slot_of(now + shift)) for shift in (ZERO, SLOT)}
        for name in sorted(wanted - self._prepared):
            await recent_log.prepare(self._store.database, name)
        self._prepared = wanted


async def _read_gently(collection: AsyncCollection[Document]) -> list[Document]:
    """Every document of ``collection``, a batch at a time, each followed by a pause
    ``READ_PAUSES`` times as long as the batch took: on FerretDB a read costs the server about
    0.2 ms a document, and a slot of thousands read at once takes its CPU from the writes that
    alerts wait for (the benchmark's p95 was 0.5 s while it ran). At a quarter of its time the
    server still reads some 1,000 entries a second, several times what 1,000 busy accounts log."""
    found: list[Document] = []
    cursor = collection.find({}, batch_size=SEALED_READ_BATCH)
    try:
        while cursor.alive:
            started = time.monotonic()
            found += await cursor.to_list(SEALED_READ_BATCH)
            await asyncio.sleep(min(READ_PAUSES * (time.monotonic() - started), MAX_READ_PAUSE_S))
    finally:
        await cursor.close()
    return found


async def _insert_new(collection: AsyncCollection[Document], blocks: list[Document]) -> None:
    # Unordered: blocks past a refused one (already written by another instance, or by this
    # one before it stopped short of the drop) still go in.
    try:
        await collection.insert_many(blocks, ordered=False)
    except BulkWriteError as error:
        if duplicate_positions(error) is None:
            raise
