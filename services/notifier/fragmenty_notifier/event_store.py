"""What the notifier reads from the database: stored events (resume, recovery) and listings."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from fragmenty_shared.contracts import Asset, PriceEvent
from fragmenty_shared.storage import Collections, event_from_document

REPLAY_BATCH = 500


def event_id_floor(moment: datetime) -> str:
    """The smallest event id at ``moment``: ids start with their time (see make_event_id)."""
    return moment.strftime("%Y%m%dT%H%M%S.%fZ")


class EventStore:
    def __init__(self, database: AsyncDatabase[dict[str, Any]]) -> None:
        self._database = database
        self._events = database[Collections.EVENTS]
        self._listings = database[Collections.LISTINGS]

    async def ping(self) -> None:
        await self._database.command("ping")

    async def events_after(self, event_id: str, *, limit: int) -> AsyncIterator[PriceEvent]:
        """Stored events with an id above ``event_id``, oldest first (ids sort by time).

        Only an ``_id`` range: the one filter FerretDB pushes down to SQLite.
        """
        cursor = (
            self._events.find({"_id": {"$gt": event_id}})
            .sort("_id", 1)
            .limit(limit)
            .batch_size(REPLAY_BATCH)
        )
        async with cursor:
            async for document in cursor:
                yield event_from_document(document)

    async def current_listings(self, asset: Asset) -> list[dict[str, Any]]:
        """Every listing of one asset that is still on Fragment (for the legacy sockets)."""
        cursor = self._listings.find({"asset": asset.value, "delisted_at": None})
        return [document async for document in cursor]
