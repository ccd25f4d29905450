"""The alerts service's collections, and the one write primitive its shared state rests on.

Shared state between instances is kept with **unique-key inserts**: whoever inserts a document
with a given ``_id`` first has claimed it, and everybody else gets a duplicate-key error. That
holds on MongoDB and on FerretDB 1.x alike (whose conditional updates are not atomic under
concurrency: two instances may both "win" a ``find_one_and_update``). Nothing here relies on a
conditional update.

The collections, their keys, growth classes and indexes are declared with the others in
:mod:`fragmenty_shared.schema` (``ALERT_COLLECTIONS``); docs/storage.md lists them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from fragmenty_shared.schema import ALERT_COLLECTIONS, AlertCollections
from fragmenty_shared.storage import ensure_indexes

Document = dict[str, Any]


class AlertsStore:
    """Handles on the alerts collections of one database."""

    def __init__(self, database: AsyncDatabase[Document]) -> None:
        self.database = database
        names = AlertCollections
        self.accounts = database[names.ACCOUNTS]
        self.api_keys = database[names.API_KEYS]
        self.rules = database[names.RULES]
        self.channels = database[names.CHANNELS]
        self.meta = database[names.META]
        self.links = database[names.LINKS]
        self.heads = database[names.HEADS]
        self.slots = database[names.SLOTS]
        self.outbox = database[names.OUTBOX]
        self.deliveries = database[names.DELIVERIES]
        self.delivery_archive = database[names.DELIVERY_ARCHIVE]
        self.attempts = database[names.ATTEMPTS]
        self.digest_items = database[names.DIGEST_ITEMS]
        self.feed = database[names.FEED]

    async def ensure_indexes(self) -> None:
        await ensure_indexes(self.database, ALERT_COLLECTIONS)

    async def ping(self) -> None:
        await self.database.command("ping")


async def claim(collection: AsyncCollection[Document], document: Document) -> bool:
    """Insert ``document``; False when its ``_id`` was already taken (someone else's claim)."""
    try:
        await collection.insert_one(document)
    except DuplicateKeyError:
        return False
    return True


async def delete_ids(collection: AsyncCollection[Document], ids: Iterable[str]) -> None:
    ids = list(ids)
    if ids:
        await collection.delete_many({"_id": {"$in": ids}})
