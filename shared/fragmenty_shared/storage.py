"""What lives in the database, and how to reach it.

Every document has a deterministic string ``_id`` (``number:88800001234``): FerretDB only pushes
``{_id: ...}`` filters down to SQLite, and deterministic ids make every write idempotent.
Stay inside what both MongoDB and FerretDB 1.x support (see docs/storage.md).
"""

from __future__ import annotations

from typing import Any

from pymongo import AsyncMongoClient

from fragmenty_shared.contracts import Asset
from fragmenty_shared.settings import Settings


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


def make_mongo_client(settings: Settings, **options: Any) -> AsyncMongoClient[dict[str, Any]]:
    """A client that fails fast when the server is down, rather than hanging a request."""
    options.setdefault("serverSelectionTimeoutMS", 5_000)
    options.setdefault("connectTimeoutMS", 5_000)
    options.setdefault("tz_aware", True)
    return AsyncMongoClient(settings.mongodb_url, **options)
