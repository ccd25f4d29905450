"""Keeps the current :class:`MarketSnapshot` and reloads it in the background.

Requests read whatever snapshot is current and never wait for the database, except before the
very first load has finished. A failed reload keeps the previous snapshot (stale beats empty).
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from fragmenty_api.metrics import ApiMetrics
from fragmenty_api.snapshot import MarketSnapshot
from fragmenty_shared.storage import Collections

logger = logging.getLogger(__name__)

# The item page's details (bid and ownership history) are large; the detail route reads them
# fresh by _id, which FerretDB serves from its primary key.
_LISTING_PROJECTION = {"details": 0}


class SnapshotUnavailable(RuntimeError):
    """No snapshot has been loaded yet (the database has not answered since start)."""


class SnapshotStore:
    def __init__(
        self,
        database: AsyncDatabase[dict[str, Any]],
        *,
        refresh_seconds: float,
        metrics: ApiMetrics,
        first_load_timeout_s: float = 10.0,
    ) -> None:
        self._database = database
        self._refresh_seconds = refresh_seconds
        self._metrics = metrics
        self._first_load_timeout_s = first_load_timeout_s
        self._snapshot: MarketSnapshot | None = None
        self._loaded = asyncio.Event()
        self._reload_lock = asyncio.Lock()

    @property
    def loaded(self) -> bool:
        return self._snapshot is not None

    async def current(self) -> MarketSnapshot:
        if self._snapshot is None:
            try:
                await asyncio.wait_for(self._loaded.wait(), self._first_load_timeout_s)
            except TimeoutError:
                raise SnapshotUnavailable("the market data is not loaded yet") from None
        assert self._snapshot is not None
        return self._snapshot

    async def reload(self) -> MarketSnapshot:
        """Read every collection the snapshot needs and make the result current."""
        async with self._reload_lock:
            started = time.perf_counter()
            loaded_at = datetime.now(UTC)
            listings, history, events = await asyncio.gather(
                self._read(Collections.LISTINGS, _LISTING_PROJECTION),
                self._read(Collections.PRICE_HISTORY, None),
                self._read(Collections.EVENTS, None),
            )
            # Indexing 20,000 listings takes tens of milliseconds: keep the event loop answering.
            snapshot = await asyncio.to_thread(
                MarketSnapshot.build,
                listings=listings,
                history=history,
                events=events,
                loaded_at=loaded_at,
            )
            self._snapshot = snapshot
            self._loaded.set()
            self._metrics.snapshot_load_seconds.observe(time.perf_counter() - started)
            self._metrics.snapshot_listings.set(len(snapshot.listings))
            self._metrics.snapshot_loaded_at.set(loaded_at.timestamp())
            return snapshot

    async def _read(
        self, collection: str, projection: dict[str, int] | None
    ) -> list[dict[str, Any]]:
        cursor = self._database[collection].find({}, projection, batch_size=5000)
        return await cursor.to_list()

    async def run(self) -> None:
        """Reload forever, every ``refresh_seconds``; cancel to stop."""
        while True:
            try:
                await self.reload()
            except asyncio.CancelledError:
                raise
            except Exception:  # the loop must survive a database outage
                self._metrics.snapshot_failures.inc()
                logger.exception("market snapshot reload failed; keeping the previous one")
            await asyncio.sleep(self._refresh_seconds)
