"""The delivery log: a bounded recent collection, an archive of compressed blocks, and pages.

Every attempt's outcome is inserted once into ``alert_deliveries``. That collection keeps only
the newest attempts (``alerts_delivery_log_window`` of them, plus up to ``ARCHIVE_BATCH``, the
fewer than ``BLOCK_ENTRIES`` that wait for a full block, and what was logged in the last
``SETTLE``): ``archive`` moves the older ones, oldest first, into blocks of
``alert_delivery_archive`` (their BSON, compressed: ``fragmenty_shared.blobs``) that name the
accounts they hold, kept for the retention. On FerretDB 1.x every query scans the
collection it reads, so the recent log is kept small, and a round of archiving is a couple of
inserts and one delete (a delete holds the database while it scans); on MongoDB both are read
through indexes.

**Order.** Newest first means by when the outcome was logged (``finished_at``), then by id: an
entry is logged once, within moments of that time, so an entry that arrives later is never
older than one that was archived before it (only what was logged ``SETTLE`` ago or earlier is
moved). So the archive holds exactly the older part of the log, its blocks cover ranges that
do not overlap, and a page reads the recent collection first and the archive only for what is
left. The cursor is the ``(finished_at, _id)`` of the last entry of the previous page: a page
never repeats or skips one.

**Moves.** A block is inserted before its entries leave the recent collection, so an entry
being moved is found in one or both (readers drop the second copy). Blocks are named after
their first entry and cut at the same places (full blocks of ``BLOCK_ENTRIES``, counted from
the oldest recent entry, which is where the last block ended): instances archiving at once make
the same blocks, however much of the log each read, the second copy of a block is refused, and
only the entries of a block an instance inserted are deleted by it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError

from fragmenty_alerts.store import AlertsStore, Document
from fragmenty_shared.blobs import pack_documents, unpack_documents
from fragmenty_shared.storage import duplicate_positions

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Only entries logged at least this long ago are archived (an entry is logged within moments of
# its ``finished_at``: a batch's linger and one round trip).
SETTLE = timedelta(seconds=60)
BLOCK_ENTRIES = 500
# Blocks a page reads at most (an account with few entries in each): past them the page ends
# early, its cursor at the oldest block read.
MAX_BLOCKS_PER_PAGE = 20
# The recent log is archived once it holds this many beyond its window (fewer, larger blocks).
ARCHIVE_BATCH = 500
# Ids per delete of moved entries (FerretDB scans the collection once per delete command).
DELETE_BATCH = 5000
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
    found = await store.deliveries.find(
        _recent_query(account_id, status, before),
        PAGE_PROJECTION,
        sort=NEWEST_FIRST,
        limit=limit + 1,
    ).to_list(limit + 1)
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
    ``MAX_BLOCKS_PER_PAGE`` with older blocks left, the first key of the oldest block read
    (a block is named after its first entry)."""
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
        oldest_read = (block["first"], str(block["_id"]))
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
    entry = await store.deliveries.find_one({"_id": entry_id})
    if entry is not None:
        return entry
    block = await store.delivery_archive.find_one({"ids": entry_id})
    if block is None:
        return None
    return next((e for e in _entries_of(block) if e["_id"] == entry_id), None)


async def attempts_made(store: AlertsStore, delivery_id: str) -> int | None:
    """The number of the delivery's newest logged attempt, recent or archived."""
    newest = await store.deliveries.find_one(
        {"delivery_id": delivery_id}, {"attempt": 1}, sort=[("attempt", DESCENDING)]
    )
    numbers = [int(newest["attempt"])] if newest else []
    async for block in store.delivery_archive.find({"deliveries": delivery_id}):
        numbers += [
            int(e["attempt"]) for e in _entries_of(block) if e["delivery_id"] == delivery_id
        ]
    return max(numbers, default=None)


def _blocks(entries: list[Document]) -> Iterable[Document]:
    """Blocks of BLOCK_ENTRIES consecutive entries, oldest first; the rest (fewer) waits.

    Only full blocks: each starts BLOCK_ENTRIES after the previous one, wherever an instance's
    read of the log ended, so instances that read it at different moments cut it at the same
    places (a short last block would end where one instance's read did, and a longer read's
    next block would overlap it)."""
    ordered = sorted(entries, key=key_of)
    for start in range(0, len(ordered) - BLOCK_ENTRIES + 1, BLOCK_ENTRIES):
        part = ordered[start : start + BLOCK_ENTRIES]
        yield {
            "_id": str(part[0]["_id"]),
            "first": part[0]["finished_at"],
            "last": part[-1]["finished_at"],
            "count": len(part),
            "accounts": sorted({str(entry["account_id"]) for entry in part}),
            "ids": [entry["_id"] for entry in part],
            "deliveries": sorted({entry["delivery_id"] for entry in part}),
            "entries": pack_documents(part),
        }


async def archive(store: AlertsStore, window: int, now: datetime) -> int:
    """Once the recent log holds ``ARCHIVE_BATCH`` entries beyond its newest ``window``, move
    those (logged at least ``SETTLE`` ago) into full archive blocks; returns how many were
    moved."""
    recent = store.deliveries
    # One read of the whole recent log (bounded) gives both its size and its oldest entries: on
    # FerretDB a count costs a scan as well (3,500 entries at load 4: count 0.5-0.8 s, the
    # sorted read 0.8 s, the delete below 1.2 s).
    every = await recent.find({}, sort=OLDEST_FIRST).to_list(None)
    beyond = len(every) - window
    if beyond < ARCHIVE_BATCH:
        return 0
    settled = now - SETTLE
    oldest = [entry for entry in every[:beyond] if entry["finished_at"] < settled]
    blocks = list(_blocks(oldest))
    if not blocks:
        return 0
    inserted = await _insert_new(store.delivery_archive, blocks)
    moved = [entry_id for block in inserted for entry_id in block["ids"]]
    for start in range(0, len(moved), DELETE_BATCH):
        await recent.delete_many({"_id": {"$in": moved[start : start + DELETE_BATCH]}})
    return len(moved)


async def _insert_new(
    collection: AsyncCollection[Document], blocks: list[Document]
) -> list[Document]:
    # Unordered: blocks past a refused one still go in. An instance that stopped between its
    # insert and its delete leaves a block whose entries stay in the recent log (readers drop
    # the second copy); an ordered insert would be refused at that block on every round after.
    try:
        await collection.insert_many(blocks, ordered=False)
    except BulkWriteError as error:
        refused = duplicate_positions(error)
        if refused is None:
            raise
        return [block for position, block in enumerate(blocks) if position not in refused]
    return blocks
