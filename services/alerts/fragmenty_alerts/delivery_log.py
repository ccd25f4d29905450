"""Reading the delivery log (``alert_deliveries``) a page at a time, newest first.

The log holds every attempt of every account for the retention (14 days): an account's whole
log is not a bounded read. A page is one query that asks the server for ``limit + 1`` entries
of one account, newer than nothing or older than the cursor, newest first: by when the outcome
was logged (``finished_at``), then by id (the ``(account_id, finished_at, _id)`` index on
MongoDB; ``(account_id, status, finished_at, _id)`` with a status). The cursor is the
``(finished_at, _id)`` of the last entry of the previous page, so a page never repeats or skips
an entry while new ones arrive.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from pymongo import DESCENDING
from pymongo.asynchronous.collection import AsyncCollection

from fragmenty_alerts.store import Document

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# What a page does not need: the message sent (the retry reads it from the entry itself).
PAGE_PROJECTION = {"message": 0}


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


def cursor_of(entry: Document) -> str:
    """``<seconds since the epoch, 6 decimals>|<entry id>``: the format clients already hold."""
    return f"{entry['finished_at'].timestamp():.6f}|{entry['_id']}"


def parse_cursor(cursor: str) -> tuple[datetime, str]:
    moment, _, entry_id = cursor.partition("|")
    try:
        seconds = float(moment)
    except ValueError:
        raise BadCursor(
            "not a cursor from this API (use next_cursor of the previous page)"
        ) from None
    if not entry_id or not 0 <= seconds < 1e11:
        raise BadCursor("not a cursor from this API (use next_cursor of the previous page)")
    # Stored times are whole milliseconds: rebuilt exactly, so the equality below matches.
    return EPOCH + timedelta(milliseconds=round(seconds * 1000)), entry_id


def page_query(
    account_id: str, status: DeliveryStatus | None, cursor: str | None
) -> dict[str, Any]:
    query: dict[str, Any] = {"account_id": account_id}
    if status is not None:
        query["status"] = status.value
    if cursor is not None:
        at, entry_id = parse_cursor(cursor)
        query["$or"] = [
            {"finished_at": {"$lt": at}},
            {"finished_at": at, "_id": {"$lt": entry_id}},
        ]
    return query


NEWEST_FIRST = [("finished_at", DESCENDING), ("_id", DESCENDING)]


async def read_page(
    log: AsyncCollection[Document],
    account_id: str,
    *,
    limit: int,
    status: DeliveryStatus | None = None,
    cursor: str | None = None,
) -> Page:
    """One page of an account's log; raises ``BadCursor``."""
    query = page_query(account_id, status, cursor)
    found = await log.find(query, PAGE_PROJECTION, sort=NEWEST_FIRST, limit=limit + 1).to_list(
        limit + 1
    )
    entries = found[:limit]
    more = len(found) > limit
    return Page(entries, cursor_of(entries[-1]) if more else None)


async def attempts_made(log: AsyncCollection[Document], delivery_id: str) -> int | None:
    """The number of the delivery's newest logged attempt (one entry read, by index)."""
    newest = await log.find_one(
        {"delivery_id": delivery_id}, {"attempt": 1}, sort=[("attempt", DESCENDING)]
    )
    return int(newest["attempt"]) if newest else None
