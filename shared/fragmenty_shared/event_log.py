"""The event log: every stored event at a position (``seq``) that only grows, read by position.

Ingest gives each event its ``seq`` when it stores it, so the order of positions is the order
in which events were *recorded*, whatever their observation times (a census is published
minutes after its observations): resuming after the last position seen misses nothing.
``event_id`` stays the deterministic dedupe key, ``occurred_at`` what users see.

Storage (see docs/storage.md): ingest writes one *block* per batch (per outbox document) into
``event_log``: ``_id`` = its first seq, ``first_seq``, ``last_seq``, ``prev_seq`` (the last seq
of the block written before it, so a reader can tell whether older blocks were archived), and
the events as one BSON blob. ``event_log`` keeps the newest events (a window, a setting of
ingest); older blocks are merged into bigger blocks of ``event_archive``. A reader reads the
window first and the archive only when the window does not reach back to its cursor: a block is
inserted into the archive before it leaves the window, so a concurrent move is never missed.

Positions may skip numbers (ingest reserves ranges, and a crash forfeits the rest of one); they
never go down and are never reused.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.database import AsyncDatabase

from fragmenty_shared.blobs import pack_documents, unpack_documents
from fragmenty_shared.schema import SEQ_COUNTER_ID as SEQ_COUNTER_ID
from fragmenty_shared.schema import Collections

Document = dict[str, Any]


class SinceError(ValueError):
    """A resume position that is not one: not a number, or ahead of every stored event."""


def parse_since(text: str) -> int:
    """A ``since`` cursor as text (a query parameter): a non-negative integer position."""
    if not text.isascii() or not text.isdigit() or len(text) > 18:
        raise SinceError("since must be an event position (the seq of an event), e.g. since=0")
    return int(text)


@dataclass(frozen=True, slots=True)
class BlockInfo:
    """What a block holds, without its events."""

    id: int
    first_seq: int
    last_seq: int
    prev_seq: int
    count: int

    @classmethod
    def of(cls, document: Document) -> BlockInfo:
        return cls(
            id=int(document["_id"]),
            first_seq=int(document["first_seq"]),
            last_seq=int(document["last_seq"]),
            prev_seq=int(document.get("prev_seq", 0)),
            count=int(document.get("count", 0)),
        )


def block_document(events: Sequence[Document], prev_seq: int) -> Document:
    """A block of stored event documents (each with its ``seq``), in position order, as one
    compressed blob (:mod:`fragmenty_shared.blobs`)."""
    first, last = events[0]["seq"], events[-1]["seq"]
    return {
        "_id": first,
        "first_seq": first,
        "last_seq": last,
        "prev_seq": prev_seq,
        "count": len(events),
        "events": pack_documents(events),
    }


def merged_block(blocks: Sequence[Document]) -> Document:
    """Consecutive blocks as one (for the archive)."""
    events = [event for block in blocks for event in block_events(block)]
    return block_document(events, int(blocks[0].get("prev_seq", 0)))


def block_events(document: Document) -> list[Document]:
    """The event documents a block holds, in position order."""
    return unpack_documents(document["events"], where=f"event block {document.get('_id')}")


class EventLogReader:
    """Reads stored events by position; every query touches the window or, cold, the archive."""

    def __init__(self, database: AsyncDatabase[Document]) -> None:
        self._window = database[Collections.EVENT_LOG]
        self._archive = database[Collections.EVENT_ARCHIVE]

    async def last_seq(self) -> int:
        """The newest stored position (0 when nothing is stored)."""
        newest = await self._window.find_one({}, {"last_seq": 1}, sort=[("_id", DESCENDING)])
        return 0 if newest is None else int(newest["last_seq"])

    async def check_since(self, since: int) -> int:
        """``since`` when it names a stored position (or 0); the newest position is returned."""
        last = await self.last_seq()
        if since > last:
            raise SinceError(f"since={since} is ahead of the newest stored event ({last})")
        return last

    async def after(self, since: int, *, limit: int) -> list[Document]:
        """Up to ``limit`` stored event documents with a position above ``since``, in order."""
        found: list[Document] = []
        async for page in self.pages_after(since, limit=limit, page=limit):
            found += page
        return found

    async def pages_after(
        self, since: int, *, limit: int, page: int
    ) -> AsyncIterator[list[Document]]:
        """:meth:`after` in pages of up to ``page`` events, from one read of the window: on
        FerretDB every query parses the whole window, so a replay that asked again per page
        would pay for the window once per page."""
        batch: list[Document] = []
        sent = 0
        async for block in self._blocks_after(since):
            for event in block_events(block):
                if event["seq"] <= since:
                    continue
                batch.append(event)
                sent += 1
                if sent >= limit:
                    yield batch
                    return
                if len(batch) >= page:
                    yield batch
                    batch = []
        if batch:
            yield batch

    async def latest(self, limit: int, *, recent_only: bool = False) -> list[Document]:
        """The newest ``limit`` events, oldest first.

        ``recent_only``: never more than the recent window holds (the archive grows with all
        history; a request path that may ask for more than the window must not read it).
        """
        newest_first: list[Document] = []
        cursor = self._window.find({}).sort("_id", DESCENDING)
        async with cursor:
            async for block in cursor:
                newest_first += reversed(block_events(block))
                if len(newest_first) >= limit:
                    break
        if len(newest_first) < limit and not recent_only:  # the rest is in the archive
            oldest = newest_first[-1]["seq"] if newest_first else None
            older = self._archive.find({} if oldest is None else {"first_seq": {"$lt": oldest}})
            async with older.sort("_id", DESCENDING) as cursor:
                async for block in cursor:
                    newest_first += [
                        e
                        for e in reversed(block_events(block))
                        if oldest is None or e["seq"] < oldest
                    ]
                    if len(newest_first) >= limit:
                        break
        return newest_first[:limit][::-1]

    async def _blocks_after(self, since: int) -> AsyncIterator[Document]:
        window = [
            block
            async for block in self._window.find({"last_seq": {"$gt": since}}).sort(
                "_id", ASCENDING
            )
        ]
        if not window and await self._nothing_after(since):
            return  # the common resume: the client is up to date; the archive is not read
        if not window or int(window[0].get("prev_seq", 0)) > since:
            # The window starts after ``since``: what lies between is in the archive (read after
            # the window, so a block moved meanwhile is found there).
            until = int(window[0]["first_seq"]) if window else None
            query: Document = {"last_seq": {"$gt": since}}
            if until is not None:
                query["first_seq"] = {"$lt": until}
            async with self._archive.find(query).sort("_id", ASCENDING) as cursor:
                async for block in cursor:
                    yield block
        for block in window:
            yield block

    async def _nothing_after(self, since: int) -> bool:
        """No stored event is newer than ``since`` (the archive only holds blocks older than the
        window's, so the window's newest block tells; an empty window proves nothing)."""
        newest = await self._window.find_one({}, {"last_seq": 1}, sort=[("_id", DESCENDING)])
        return newest is not None and int(newest["last_seq"]) <= since


def events_in_blocks(blocks: Iterable[Document]) -> list[Document]:
    return [event for block in blocks for event in block_events(block)]
