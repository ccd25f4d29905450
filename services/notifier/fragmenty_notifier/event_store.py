"""What the notifier reads from the database: stored events (resume, recovery) and listings."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from fragmenty_shared.contracts import Asset, PriceEvent
from fragmenty_shared.event_log import EventLogReader
from fragmenty_shared.storage import Collections, event_from_document

# Stored events handed on at a time (a replay's frames, a recovery's fan-out batch).
REPLAY_BATCH = 500


class EventStore:
    def __init__(self, database: AsyncDatabase[dict[str, Any]]) -> None:
        self._database = database
        self._log = EventLogReader(database)
        self._listings = database[Collections.LISTINGS]

    async def ping(self) -> None:
        await self._database.command("ping")

    async def last_seq(self) -> int:
        """The newest stored position (0 when nothing is stored)."""
        return await self._log.last_seq()

    async def check_since(self, since: int) -> None:
        """Raises :class:`~fragmenty_shared.event_log.SinceError` for a position never stored."""
        await self._log.check_since(since)

    async def events_after(self, since: int, *, limit: int) -> AsyncIterator[PriceEvent]:
        """Up to ``limit`` stored events with a position above ``since``, in position order."""
        async for page in self.event_pages_after(since, limit=limit):
            for event in page:
                yield event

    async def event_pages_after(self, since: int, *, limit: int) -> AsyncIterator[list[PriceEvent]]:
        """``events_after`` in pages of up to ``REPLAY_BATCH`` events.

        One read of the event log's recent window (bounded) serves every page; its archive is
        read only for a cursor older than the window.
        """
        async for page in self._log.pages_after(since, limit=limit, page=REPLAY_BATCH):
            yield [event_from_document(document) for document in page]

    async def current_listings(self, asset: Asset) -> list[dict[str, Any]]:
        """Every listing of one asset that is still on Fragment (for the legacy sockets)."""
        cursor = self._listings.find({"asset": asset.value, "delisted_at": None})
        return [document async for document in cursor]
