"""The recent delivery log: one collection per ``SLOT`` of finished attempts, archived whole.

An attempt's entry goes into ``alert_deliveries_<slot>``, the slot of its ``finished_at``
(seconds since the epoch // ``SLOT``). Once a slot has ended ``SETTLE`` ago (nothing more is
logged into it), an archiving round **seals** it: renames it to ``alert_deliveries_<slot>_sealed``
(atomic; of instances sealing at once one succeeds), reads it whole, writes its entries into
archive blocks and drops it.

Why collections and not one log: on FerretDB 1.x every query and every delete scans its whole
collection (only ``_id`` equality is served by SQLite), and a delete holds the database's write
lock while it scans. Moving the oldest entries out of one log cost a full read and a full delete
of the whole log per round (reads of 13,000 entries every 10 s at the benchmark's 220 attempts
a second: its p99 went from 180 ms to 370-600 ms). Here each entry is read once, and a drop
costs milliseconds whatever the slot holds. On MongoDB the same holds with indexes; a slot's
collection gets the log's indexes before it is written to.

A sealed collection is never written again, so instances reading it read the same entries and
cut the same blocks. An entry logged after its slot was sealed (a write delayed past
``SETTLE``) recreates the slot's collection and is archived in a later round; it is not lost,
but its block overlaps the slot's earlier ones. The bare ``alert_deliveries`` holds the indexes'
declaration, and the entries of versions before slots: the first round seals it when it holds
any.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import OperationFailure

from fragmenty_alerts.store import Document
from fragmenty_shared.schema import AlertCollections, spec

SLOT = timedelta(seconds=20)
# A slot is sealed this long after it ended: an entry is logged within moments of its
# finished_at (a batch's linger and a round trip).
SETTLE = timedelta(seconds=20)
BASE = AlertCollections.DELIVERIES
SEALED = "_sealed"
_NAME = re.compile(rf"^{BASE}(?:_(\d+))?({SEALED})?$")
_NAMESPACE_NOT_FOUND = 26
_NAMESPACE_EXISTS = 48


def slot_of(moment: datetime) -> int:
    return int(moment.timestamp() // SLOT.total_seconds())


def name_of(slot: int) -> str:
    return f"{BASE}_{slot}"


@dataclass(frozen=True)
class LogCollection:
    """A collection of the recent log; ``slot`` 0 is the bare one (entries before slots)."""

    name: str
    slot: int
    sealed: bool

    def settled(self, now: datetime) -> bool:
        ends = datetime.fromtimestamp((self.slot + 1) * SLOT.total_seconds(), UTC)
        return ends + SETTLE <= now


def parse_name(name: str) -> LogCollection | None:
    matched = _NAME.match(name)
    if matched is None:
        return None
    return LogCollection(name, int(matched.group(1) or 0), matched.group(2) is not None)


async def log_collections(database: AsyncDatabase[Document]) -> list[LogCollection]:
    """The recent log's collections, oldest slot first (listing them reads no document)."""
    names = await database.list_collection_names(filter={"name": {"$regex": f"^{BASE}"}})
    found = [parsed for name in names if (parsed := parse_name(name)) is not None]
    return sorted(found, key=lambda collection: (collection.slot, collection.sealed))


async def seal(database: AsyncDatabase[Document], collection: LogCollection) -> None:
    """Rename the slot to its sealed name; another instance's seal, or a sealed copy of the
    slot not yet archived (then the slot waits for the next round), is no error."""
    try:
        await database[collection.name].rename(collection.name + SEALED)
    except OperationFailure as error:
        if error.code not in (_NAMESPACE_NOT_FOUND, _NAMESPACE_EXISTS):
            raise


async def prepare(database: AsyncDatabase[Document], name: str) -> None:
    """A slot's collection with the log's indexes, before anything is logged into it (MongoDB
    would create it on the first insert without them). One index per command, as
    ``fragmenty_shared.storage.ensure_indexes`` does."""
    for index in spec(BASE).indexes:
        await database[name].create_indexes([index])


async def has_entries(database: AsyncDatabase[Document], name: str) -> bool:
    return await database[name].find_one({}, {"_id": 1}) is not None


async def exists(database: AsyncDatabase[Document], name: str) -> bool:
    return bool(await database.list_collection_names(filter={"name": name}))
