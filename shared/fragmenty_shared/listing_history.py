"""A listing's history: its stored events, kept beside the listing and read by one key.

``listing_history_NN`` (``NN`` = :func:`~fragmenty_shared.schema.history_collection`) holds one
document per listing::

    _id: "<asset>:<slug>"
    last_seq: int          the position of the newest event in it (writes skip what it holds)
    count: int             events in ``rows``
    rows: binary           the newest events (stored event documents, with ``seq``), oldest
                           first, one BSON document after the other: at most a setting of ingest
    archived: [str]        ``history_archive`` ids of older blocks, oldest first

Each partition holds about 1/64 of the listings, each with at most that many rows: reading a
listing's history touches a set bounded by the market, never the whole history. A listing
with a very long history (more than the setting: hundreds of changes) has its older rows in
``history_archive`` blocks (``_id`` = ``"<listing id>:<first seq>"``, same ``rows`` blob), read
only for that listing. The rows are a blob because FerretDB keeps documents as JSON and parses
what it scans: one string costs far less to skip than hundreds of nested objects.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bson import Binary
from pymongo.asynchronous.database import AsyncDatabase

from fragmenty_shared.blobs import pack_documents, unpack_documents
from fragmenty_shared.schema import Collections, history_collection

Document = dict[str, Any]


def encode_rows(rows: Sequence[Document]) -> Binary:
    """A history's rows as one compressed blob (:mod:`fragmenty_shared.blobs`)."""
    return pack_documents(rows)


def decode_rows(document: Document) -> list[Document]:
    """The stored event documents a history (or history archive) document holds, oldest first."""
    blob = document.get("rows")
    return [] if not blob else unpack_documents(blob, where=f"history {document.get('_id')}")


def history_document(
    listing_id: str, rows: Sequence[Document], archived: Sequence[str] = ()
) -> Document:
    return {
        "_id": listing_id,
        "last_seq": max((int(row["seq"]) for row in rows), default=0),
        "count": len(rows),
        "rows": encode_rows(rows),
        "archived": list(archived),
    }


def archive_block_id(listing_id: str, rows: Sequence[Document]) -> str:
    return f"{listing_id}:{rows[0]['seq']}"


def split_history(
    rows: Sequence[Document], keep: int
) -> tuple[list[Document], list[list[Document]]]:
    """A listing's rows as (the rows its history document keeps, blocks for the archive).

    The document never holds more than ``keep`` rows. When it would, it is cut down to its
    newest ``keep - keep // 2``, so each archive block carries at least ``keep // 2`` rows: one
    block per change would make the archive, and the document's list of blocks, grow with
    every change. Ingest and migrate cut the same way.
    """
    if len(rows) <= keep:
        return list(rows), []
    kept_from = len(rows) - (keep - keep // 2)
    moving = list(rows[:kept_from])
    blocks = [moving[start : start + keep] for start in range(0, len(moving), keep)]
    return list(rows[kept_from:]), blocks


class ListingHistoryReader:
    """Reads one listing's stored events (api detail and page, valuation)."""

    def __init__(self, database: AsyncDatabase[Document]) -> None:
        self._database = database

    async def events(self, listing_id: str) -> list[Document]:
        """Every stored event of the listing, oldest first (in position order)."""
        document = await self._database[history_collection(listing_id)].find_one(
            {"_id": listing_id}
        )
        if document is None:
            return []
        rows: list[Document] = []
        archived = list(document.get("archived") or ())
        if archived:  # a long history: its older blocks, by key
            blocks = {
                block["_id"]: block
                async for block in self._database[Collections.HISTORY_ARCHIVE].find(
                    {"_id": {"$in": archived}}
                )
            }
            for block_id in archived:
                if block_id in blocks:
                    rows += decode_rows(blocks[block_id])
        return rows + decode_rows(document)
