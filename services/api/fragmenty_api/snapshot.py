"""The current listings in memory, indexed for every sort order: bounded by the market.

Pattern, tag and price filters over the whole market are what users ask for most, and no
database index answers ``888*0000`` or "memorability >= 0.8 sorted by ending": so the api keeps
the *current state of each listing* (one row per listing, never its history) in memory, read
from ``listings`` at start and kept current by events, pre-sorted for each order. Paging with a
keyset cursor costs O(page size) for unfiltered queries. History, events and statistics are not
here: they are read per request, by key, from collections whose documents are bounded (see
docs/storage.md).
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypeVar

from fragmenty_shared.contracts import PriceEvent
from fragmenty_shared.money import to_nanoton
from fragmenty_shared.storage import listing_id

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
    DISCOUNT = "discount"  # furthest under fair value first; not presorted (valuations change)


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
    """One change of one listing (what its history shows), from a stored event."""

    id: str
    listing_id: str
    type: str
    at: datetime
    status: str | None
    price_nanoton: int | None
    price_usd_cents: int | None
    ends_at: datetime | None

    @classmethod
    def of_event(cls, event: PriceEvent) -> HistoryRow:
        """The change an event records: the state after it (before it, for a delisting)."""
        state = event.new or event.old
        usd = None if state is None or state.price_usd is None else int(state.price_usd * 100)
        return cls(
            id=event.event_id,
            listing_id=listing_id(event.asset, event.slug),
            type=event.type.value,
            at=event.occurred_at,
            status=None if state is None else state.status.value,
            price_nanoton=None if state is None else to_nanoton(state.price_ton),
            price_usd_cents=usd,
            ends_at=None if state is None else state.ends_at,
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
PRESORTED_ORDERS: tuple[SortOrder, ...] = tuple(_SORT_KEYS)
"""The orders the snapshot keeps sorted (``discount`` is sorted per request)."""


def sort_key(order: SortOrder, row: ListingRow) -> SortKey:
    return _SORT_KEYS[order](row)


# What a cursor's key must look like for each order: the types of its elements, in order.
SORT_KEY_SHAPES: dict[SortOrder, tuple[type, ...]] = {
    SortOrder.PRICE_ASC: (int, str),
    SortOrder.PRICE_DESC: (int, str),
    SortOrder.ENDING: (bool, int, str),
    SortOrder.LISTED: (int, str),
    SortOrder.MEMORABILITY: (bool, float, str),
    SortOrder.DISCOUNT: (bool, float, str),
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
    # listing id -> (the row and the valuation it was made from, its JSON): rows and valuations
    # are immutable, so an entry is valid while both are still the current ones.
    row_json: dict[str, tuple[ListingRow, object, bytes]] = field(default_factory=dict)
    _version: int = 0
    _derived: dict[str, tuple[int, float, Any]] = field(default_factory=dict)
    _deriving: dict[str, asyncio.Future[Any]] = field(default_factory=dict)

    @classmethod
    def build(cls, *, listings: Iterable[Mapping[str, Any]], loaded_at: datetime) -> MarketSnapshot:
        listing_rows = _load_rows(listings, ListingRow.from_document, "listing")
        by_id = {row.id: row for row in listing_rows}
        sorted_listings = {}
        for order in _SORT_KEYS:
            rows = sorted(by_id.values(), key=_SORT_KEYS[order])
            keys = [_SORT_KEYS[order](row) for row in rows]
            sorted_listings[order] = SortedListings(order, rows, keys)
        return cls(loaded_at=loaded_at, listings=by_id, sorted_listings=sorted_listings)

    @classmethod
    def empty(cls) -> MarketSnapshot:
        return cls.build(listings=(), loaded_at=datetime.now(UTC))

    def upsert_listing(self, row: ListingRow) -> None:
        """Make ``row`` the listing's current state in every index."""
        previous = self.listings.get(row.id)
        for ordered in self.sorted_listings.values():
            if previous is not None:
                ordered.remove(previous)
            ordered.insert(row)
        self.listings[row.id] = row
        self._version += 1

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
