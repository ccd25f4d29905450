"""Helpers every reader and writer of the database shares: ids, the stored event shape, clients.

What lives in the database, with each collection's growth and indexes, is declared in
:mod:`fragmenty_shared.schema`; the event log's and the listing histories' documents in
:mod:`fragmenty_shared.event_log` and :mod:`fragmenty_shared.listing_history`; docs/storage.md
explains the design.

Every document has a deterministic ``_id``, so every write is idempotent or guarded. Stay inside
what both MongoDB and FerretDB 1.x support (no transactions, change streams, TTL indexes,
$lookup, $facet, ...).

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

A stored event (in the event log and in a listing's history) is :func:`event_to_document`:
the PriceEvent's JSON-mode fields with ``_id`` = its event id and ``seq`` = its position.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from pymongo import AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

from fragmenty_shared.contracts import Asset, PriceEvent
from fragmenty_shared.schema import Collections as Collections
from fragmenty_shared.schema import CollectionSpec


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


DUPLICATE_KEY = 11000  # the server's code for an insert whose _id (or unique key) is taken
WRITE_CHUNK = 1000  # documents per insert: large enough to amortise, small enough to retry


def duplicate_positions(error: BulkWriteError) -> set[int] | None:
    """The positions, in an unordered ``insert_many``, of the documents that were not inserted
    because their key was taken; None when any other write error happened too."""
    errors: list[dict[str, Any]] = error.details.get("writeErrors", [])
    if any(item.get("code") != DUPLICATE_KEY for item in errors):
        return None
    return {int(item["index"]) for item in errors}


async def insert_returning_duplicates(
    collection: AsyncCollection[dict[str, Any]], documents: Sequence[dict[str, Any]]
) -> list[str]:
    """Insert documents whose ``_id`` may already exist (a replay, an earlier attempt of the
    same work); those are left as they are. Returns the ids that already existed; any error
    other than a duplicate key is raised."""
    duplicates: list[str] = []
    for start in range(0, len(documents), WRITE_CHUNK):
        chunk = documents[start : start + WRITE_CHUNK]
        try:
            await collection.insert_many(list(chunk), ordered=False)
        except BulkWriteError as error:
            taken = duplicate_positions(error)
            if taken is None:
                raise
            duplicates += [chunk[index]["_id"] for index in sorted(taken)]
    return duplicates


async def insert_new(
    collection: AsyncCollection[dict[str, Any]], documents: Sequence[dict[str, Any]]
) -> int:
    """Insert documents, skipping those whose ``_id`` exists; returns how many were new."""
    return len(documents) - len(await insert_returning_duplicates(collection, documents))


async def ensure_indexes(
    database: AsyncDatabase[dict[str, Any]], collections: Iterable[CollectionSpec]
) -> None:
    """Create the schema's indexes of ``collections``; a second call is a no-op (same names,
    same keys).

    One index per call: FerretDB 1.24 drops the connection (a server panic) when a single
    createIndexes command names several indexes that already exist.
    """
    for spec in collections:
        for index in spec.indexes:
            await database[spec.name].create_indexes([index])
