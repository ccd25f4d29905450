"""What lives in the database, and how to reach it.

Every document has a deterministic string ``_id``: FerretDB only pushes ``{_id: ...}`` filters
down to SQLite, and deterministic ids make every write idempotent. Stay inside what both MongoDB
and FerretDB 1.x support (no transactions, change streams, TTL indexes, $lookup, $facet, ...).

Document shapes (ingest writes them, the api and notifier read them):

``listings`` -- current state, ``_id`` = :func:`listing_id`::

    asset, slug, title, status, url,
    price_nanoton: int                exact price; sortable and range-filterable
    price_usd_cents: int | None       USD at the observed rate
    ton_usd_rate: str                 decimal string
    ends_at, sold_at: datetime | None
    memorability: float | None        numbers only (0..1); tags: list[str]
    first_seen_at, changed_at: datetime   observation times of the first and the last change
    delisted_at: datetime | None      set when a complete census no longer lists it
    details: dict | None              ItemDetails (JSON mode) from the item page

``price_history`` -- one document per change, ``_id`` = the event id::

    listing_id, asset, slug, type, at: datetime, status, price_nanoton, price_usd_cents, ends_at

``events`` -- every PriceEvent, ``_id`` = event id (which sorts by time): see
:func:`event_to_document` / :func:`event_from_document`. Ingest adds one field, which
:func:`event_from_document` leaves out::

    rollup_key: str                   the daily_rollups ``_id`` the event counts in

``daily_rollups`` -- per UTC day, asset and status, ``_id`` = ``"<YYYY-MM-DD>:<asset>:<status>"``
(kept with ``$inc``/``$min``/``$max``; recomputed from ``events`` after a crash)::

    day: str ("YYYY-MM-DD"), asset, status
    floor_nanoton: int | None         lowest price among that day's events with a price
    ceiling_nanoton: int | None       highest price among them
    listed_count: int                 ``listed`` events (new or relisted listings)
    sold_count: int                   ``sold`` events; a sale counts on its sold_at day
    volume_nanoton: int               sum of sale prices
    volume_usd_cents: int             sum of sale prices in USD cents (at the observed rate)
    delisted_count: int               ``delisted`` events (status = the status it left)

``census`` -- one document per crawl, ``_id`` = crawl_id (first record wins)::

    started_at, completed_at: datetime, views: list[CensusView as JSON],
    delisted_count: int, delisted_from: list["<asset>:<status>"],
    not_fully_seen: list["<asset>:<status>"]   complete views ingest did not see in full

``outbox`` -- events not yet confirmed published, one document per ingest batch, ``_id`` = the
batch's first event id; ingest's own::

    entries: binary, BSON documents one after the other, each {_id (event id), routing_key,
        event (the events document), history (the price_history document), listing_id,
        listing (the listing fields written with the event)} (one blob: cheap to store and
        delete; nobody queries inside the outbox; a batch over 8 MiB takes several documents)
"""

from __future__ import annotations

from typing import Any

from pymongo import AsyncMongoClient

from fragmenty_shared.contracts import Asset, PriceEvent


class Collections:
    """Collection names, in one place."""

    LISTINGS = "listings"  # current state of each listing
    PRICE_HISTORY = "price_history"  # one document per change: a listing's timeline
    EVENTS = "events"  # every PriceEvent, for REST replay and WebSocket resume
    OUTBOX = "outbox"  # events not yet confirmed by the broker; deleted once published
    CENSUS = "census"  # one document per crawl: which views it covered, complete or not
    DAILY_ROLLUPS = "daily_rollups"  # per asset, status and UTC day: floor, counts, volume


def listing_id(asset: Asset | str, slug: str) -> str:
    """The ``_id`` of a listing: ``<asset>:<slug>``."""
    return f"{Asset(asset).value}:{slug}"


def event_to_document(event: PriceEvent) -> dict[str, Any]:
    """An event as stored: JSON-mode fields (exact decimals as strings), ``occurred_at`` as a date."""
    document = event.model_dump(mode="json", exclude={"event_id"})
    document["_id"] = event.event_id
    document["occurred_at"] = event.occurred_at
    return document


_EVENT_FIELDS = frozenset(PriceEvent.model_fields)


def event_from_document(document: dict[str, Any]) -> PriceEvent:
    """The event a stored document holds; fields the store keeps for itself are left out.

    The contract refuses unknown fields, but a stored event may carry bookkeeping of the writer
    (e.g. which rollup it counted in), which is not part of the event.
    """
    fields = {key: value for key, value in document.items() if key in _EVENT_FIELDS}
    return PriceEvent.model_validate({**fields, "event_id": document["_id"]})


def make_mongo_client(settings_url: str, **options: Any) -> AsyncMongoClient[dict[str, Any]]:
    """A client that fails fast when the server is down, rather than hanging a request."""
    options.setdefault("serverSelectionTimeoutMS", 5_000)
    options.setdefault("connectTimeoutMS", 5_000)
    options.setdefault("tz_aware", True)
    return AsyncMongoClient(settings_url, **options)
