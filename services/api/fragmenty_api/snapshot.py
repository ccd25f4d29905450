"""An immutable, in-memory picture of the market, built from one read of the database.

FerretDB pushes only ``{_id: ...}`` filters down to SQLite: any other query scans the whole
collection (about a second for 20,000 listings on a small machine). So the api reads each
collection once per refresh and answers every request from this snapshot, with the listings
pre-sorted for each sort order. A request never waits for the database, and paging through a
presorted list with a keyset cursor costs O(page size) for unfiltered queries.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypeVar

logger = logging.getLogger(__name__)

SortKey = tuple[Any, ...]
T = TypeVar("T")

_MAX_DERIVED_VALUES = 64


class SortOrder(StrEnum):
    """The orders ``/listings`` can be sorted by."""

    PRICE_ASC = "price_asc"
    PRICE_DESC = "price_desc"
    ENDING = "ending"
    LISTED = "listed"
    MEMORABILITY = "memorability"


def _timestamp_us(moment: datetime | None) -> int:
    return 0 if moment is None else int(moment.timestamp() * 1_000_000)


def _aware(value: Any) -> datetime | None:
    """A stored datetime as an aware UTC datetime (drivers may hand back naive UTC)."""
    if not isinstance(value, datetime):
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _optional_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _recent_prices(value: Any) -> tuple[int, ...]:
    """``recent_prices`` as nanoTON: plain integers or ``{"price_nanoton": ...}`` entries."""
    if not isinstance(value, list):
        return ()
    prices = (
        _optional_int(entry.get("price_nanoton") if isinstance(entry, dict) else entry)
        for entry in value
    )
    return tuple(price for price in prices if price is not None)


@dataclass(frozen=True, slots=True)
class ListingRow:
    """One listing's current state, as stored in ``listings`` (see fragmenty_shared.storage)."""

    id: str
    asset: str
    slug: str
    title: str
    status: str
    price_nanoton: int
    price_usd_cents: int | None
    ton_usd_rate: str | None
    ends_at: datetime | None
    sold_at: datetime | None
    memorability: float | None
    tags: tuple[str, ...]
    first_seen_at: datetime | None
    changed_at: datetime | None
    delisted_at: datetime | None
    details: Mapping[str, Any] | None
    # The last prices ingest keeps on the listing (nanoTON, oldest first), for sparklines.
    recent_prices: tuple[int, ...] = ()

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> ListingRow:
        """Raises KeyError/TypeError/ValueError on a document that is not a listing."""
        price = document["price_nanoton"]
        if not isinstance(price, int) or isinstance(price, bool) or price < 0:
            raise ValueError("price_nanoton is not a non-negative integer")
        memorability = document.get("memorability")
        tags = document.get("tags") or ()
        details = document.get("details")
        rate = document.get("ton_usd_rate")
        return cls(
            id=str(document["_id"]),
            asset=str(document["asset"]),
            slug=str(document["slug"]),
            title=str(document.get("title") or document["slug"]),
            status=str(document["status"]),
            price_nanoton=price,
            price_usd_cents=_optional_int(document.get("price_usd_cents")),
            ton_usd_rate=None if rate is None else str(rate),
            ends_at=_aware(document.get("ends_at")),
            sold_at=_aware(document.get("sold_at")),
            memorability=float(memorability) if isinstance(memorability, int | float) else None,
            tags=tuple(str(tag) for tag in tags),
            first_seen_at=_aware(document.get("first_seen_at")),
            changed_at=_aware(document.get("changed_at")),
            delisted_at=_aware(document.get("delisted_at")),
            details=details if isinstance(details, dict) else None,
            recent_prices=_recent_prices(document.get("recent_prices")),
        )

    @property
    def is_listed(self) -> bool:
        """On the market now: on auction or for sale, and not delisted."""
        return self.status != "sold" and self.delisted_at is None


@dataclass(frozen=True, slots=True)
class HistoryRow:
    """One change of one listing, as stored in ``price_history``."""

    id: str
    listing_id: str
    type: str
    at: datetime
    status: str | None
    price_nanoton: int | None
    price_usd_cents: int | None
    ends_at: datetime | None

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> HistoryRow:
        at = _aware(document["at"])
        if at is None:
            raise ValueError("history entry without a time")
        status = document.get("status")
        return cls(
            id=str(document["_id"]),
            listing_id=str(document["listing_id"]),
            type=str(document.get("type") or "price_changed"),
            at=at,
            status=None if status is None else str(status),
            price_nanoton=_optional_int(document.get("price_nanoton")),
            price_usd_cents=_optional_int(document.get("price_usd_cents")),
            ends_at=_aware(document.get("ends_at")),
        )


_SORT_KEYS: dict[SortOrder, Callable[[ListingRow], SortKey]] = {
    SortOrder.PRICE_ASC: lambda row: (row.price_nanoton, row.id),
    SortOrder.PRICE_DESC: lambda row: (-row.price_nanoton, row.id),
    # Soonest end first; listings without an end come last.
    SortOrder.ENDING: lambda row: (row.ends_at is None, _timestamp_us(row.ends_at), row.id),
    # Newest first; a listing with an unknown first sighting counts as oldest.
    SortOrder.LISTED: lambda row: (-_timestamp_us(row.first_seen_at), row.id),
    SortOrder.MEMORABILITY: lambda row: (
        row.memorability is None,
        -(row.memorability or 0.0),
        row.id,
    ),
}


def sort_key(order: SortOrder, row: ListingRow) -> SortKey:
    return _SORT_KEYS[order](row)


# What a cursor's key must look like for each order: the types of its elements, in order.
SORT_KEY_SHAPES: dict[SortOrder, tuple[type, ...]] = {
    SortOrder.PRICE_ASC: (int, str),
    SortOrder.PRICE_DESC: (int, str),
    SortOrder.ENDING: (bool, int, str),
    SortOrder.LISTED: (int, str),
    SortOrder.MEMORABILITY: (bool, float, str),
}


@dataclass
class SortedListings:
    """The listings in one order, with their keys for bisecting a cursor.

    Kept sorted under single-listing updates (bisect insert/remove: a memmove of a 20,000-long
    list), so a live event never re-sorts the market.
    """

    order: SortOrder
    rows: list[ListingRow]
    keys: list[SortKey]

    def start_after(self, key: SortKey | None) -> int:
        return 0 if key is None else bisect.bisect_right(self.keys, key)

    def insert(self, row: ListingRow) -> None:
        key = sort_key(self.order, row)
        index = bisect.bisect_left(self.keys, key)
        self.keys.insert(index, key)
        self.rows.insert(index, row)

    def remove(self, row: ListingRow) -> None:
        key = sort_key(self.order, row)
        index = bisect.bisect_left(self.keys, key)
        if index < len(self.keys) and self.keys[index] == key:
            del self.keys[index]
            del self.rows[index]


def _load_rows(
    documents: Iterable[Mapping[str, Any]], parse: Callable[[Mapping[str, Any]], T], what: str
) -> list[T]:
    rows: list[T] = []
    skipped = 0
    for document in documents:
        try:
            rows.append(parse(document))
        except (KeyError, TypeError, ValueError):
            skipped += 1
    if skipped:
        logger.warning("skipped %d malformed %s documents", skipped, what)
    return rows


@dataclass
class MarketSnapshot:
    """Everything the api serves: read in full as of ``loaded_at``, then kept current by
    :meth:`upsert_listing` and :meth:`add_change` as events arrive.

    Only the event loop changes it. A reader either works synchronously or, for a long scan,
    walks a copy of the index taken in one go (see listing_query), so it never sees a
    half-applied change.
    """

    loaded_at: datetime
    listings: dict[str, ListingRow]
    sorted_listings: dict[SortOrder, SortedListings]
    history: dict[str, list[HistoryRow]]  # listing id -> its changes, oldest first
    history_in_time_order: list[HistoryRow]
    events: list[dict[str, Any]]  # stored event documents, in _id (= time) order
    event_ids: list[str]
    events_by_listing: dict[str, list[dict[str, Any]]]  # listing id -> its events, in order
    _known_event_ids: set[str] = field(default_factory=set)
    # listing id -> (the row it was made from, its JSON): rows are immutable, so an entry is valid
    # while its row is still the current one.
    row_json: dict[str, tuple[ListingRow, bytes]] = field(default_factory=dict)
    _version: int = 0
    _derived: dict[str, tuple[int, float, Any]] = field(default_factory=dict)
    _deriving: dict[str, asyncio.Future[Any]] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        *,
        listings: Iterable[Mapping[str, Any]],
        history: Iterable[Mapping[str, Any]],
        events: Iterable[Mapping[str, Any]],
        loaded_at: datetime,
    ) -> MarketSnapshot:
        listing_rows = _load_rows(listings, ListingRow.from_document, "listing")
        by_id = {row.id: row for row in listing_rows}
        sorted_listings = {}
        for order in SortOrder:
            rows = sorted(by_id.values(), key=_SORT_KEYS[order])
            keys = [_SORT_KEYS[order](row) for row in rows]
            sorted_listings[order] = SortedListings(order, rows, keys)
        history_rows = sorted(
            _load_rows(history, HistoryRow.from_document, "price history"),
            key=lambda row: (row.at, row.id),
        )
        per_listing: dict[str, list[HistoryRow]] = defaultdict(list)
        for row in history_rows:
            per_listing[row.listing_id].append(row)
        event_documents = sorted(
            (dict(doc) for doc in events if isinstance(doc.get("_id"), str)),
            key=lambda doc: doc["_id"],
        )
        events_by_listing: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for doc in event_documents:
            events_by_listing[f"{doc.get('asset')}:{doc.get('slug')}"].append(doc)
        return cls(
            loaded_at=loaded_at,
            listings=by_id,
            sorted_listings=sorted_listings,
            history=dict(per_listing),
            history_in_time_order=history_rows,
            events=event_documents,
            event_ids=[doc["_id"] for doc in event_documents],
            events_by_listing=dict(events_by_listing),
            _known_event_ids={doc["_id"] for doc in event_documents},
        )

    @classmethod
    def empty(cls) -> MarketSnapshot:
        return cls.build(listings=(), history=(), events=(), loaded_at=datetime.now(UTC))

    def events_after(self, event_id: str | None) -> Iterator[dict[str, Any]]:
        start = 0 if event_id is None else bisect.bisect_right(self.event_ids, event_id)
        return iter(self.events[start:])

    def upsert_listing(self, row: ListingRow) -> None:
        """Make ``row`` the listing's current state in every index."""
        previous = self.listings.get(row.id)
        for ordered in self.sorted_listings.values():
            if previous is not None:
                ordered.remove(previous)
            ordered.insert(row)
        self.listings[row.id] = row
        self._version += 1

    def add_change(self, event_document: dict[str, Any], change: HistoryRow) -> bool:
        """Record one event and its history entry; False when the event is already known."""
        event_id = event_document["_id"]
        if event_id in self._known_event_ids:
            return False
        self._known_event_ids.add(event_id)
        index = bisect.bisect_right(self.event_ids, event_id)
        self.event_ids.insert(index, event_id)
        self.events.insert(index, event_document)
        per_listing = self.events_by_listing.setdefault(change.listing_id, [])
        bisect.insort(per_listing, event_document, key=lambda doc: doc["_id"])
        history_key = lambda row: (row.at, row.id)  # noqa: E731
        bisect.insort(self.history.setdefault(change.listing_id, []), change, key=history_key)
        bisect.insort(self.history_in_time_order, change, key=history_key)
        self._version += 1
        return True

    def derived(
        self, name: str, compute: Callable[[MarketSnapshot], T], *, max_age_s: float = 0.0
    ) -> T:
        """A value computed from the snapshot and cached until the snapshot changes, or, with
        ``max_age_s``, for at most that long (expensive statistics need not follow every event)."""
        cached = self._derived.get(name)
        now = time.monotonic()
        if cached is not None and (cached[0] == self._version or now - cached[1] < max_age_s):
            value: T = cached[2]
            return value
        fresh = compute(self)
        self._keep(name, self._version, now, fresh)
        return fresh

    async def derived_async(
        self, name: str, compute: Callable[[MarketSnapshot], Awaitable[T]]
    ) -> T:
        """:meth:`derived` for a computation that returns to the event loop while it runs (a
        scan of the whole market). Concurrent callers of one name share one computation; its
        value is kept for the version the snapshot had when it started, so a change meanwhile
        makes the next caller compute afresh."""
        cached = self._derived.get(name)
        if cached is not None and cached[0] == self._version:
            value: T = cached[2]
            return value
        running = self._deriving.get(name)
        if running is None:
            running = asyncio.ensure_future(self._derive(name, compute))
            self._deriving[name] = running
            running.add_done_callback(lambda _: self._deriving.pop(name, None))
        # Shielded: a caller that goes away (a closed connection) must not cancel the others'.
        return await asyncio.shield(running)

    async def _derive(self, name: str, compute: Callable[[MarketSnapshot], Awaitable[T]]) -> T:
        version = self._version
        fresh = await compute(self)
        self._keep(name, version, time.monotonic(), fresh)
        return fresh

    def _keep(self, name: str, version: int, at: float, value: object) -> None:
        if len(self._derived) >= _MAX_DERIVED_VALUES:
            self._derived.clear()  # bounded: clients choose stats ranges and searches
        self._derived[name] = (version, at, value)
