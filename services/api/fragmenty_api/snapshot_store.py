"""Keeps the current :class:`MarketSnapshot`: the listings, read at start, kept current by events.

Only ``listings`` is read (one document per listing: bounded by the market, however much
history is stored), at start and then rarely, as a safety net; in between, price events from
the broker update it cheaply: the listings of the events that arrived together are re-read by
``_id``, in one query.

Requests never wait for the database, except before the very first load has finished. A failed
reload keeps the previous snapshot (stale beats empty).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from fragmenty_api.metrics import ApiMetrics
from fragmenty_api.snapshot import ListingRow, MarketSnapshot
from fragmenty_shared.contracts import PriceEvent
from fragmenty_shared.recent_ids import RecentIds
from fragmenty_shared.storage import Collections, listing_id

logger = logging.getLogger(__name__)


def _exempt_from_gc_scans() -> None:
    """Move the long-lived snapshot out of the cyclic collector's sight.

    A full collection walks every tracked object: with a few hundred thousand snapshot objects
    that is a pause of tens of milliseconds in the middle of some request. Frozen objects are
    never walked. Unfreezing first lets the previous snapshot be collected.
    """
    gc.unfreeze()
    gc.collect()
    gc.freeze()


# Live events remembered, to count each once (an outbox relay may publish one again).
RECENT_EVENT_IDS = 10_000
# Listings re-read by one query when events are applied.
APPLY_CHUNK = 500


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
        # Events that arrive while a full read is under way; applied again to its result, which
        # may have been read before they were written.
        self._arrived_during_reload: list[PriceEvent] | None = None
        self._recent_event_ids = RecentIds(RECENT_EVENT_IDS)

    @property
    def loaded(self) -> bool:
        return self._snapshot is not None

    async def wait_loaded(self) -> MarketSnapshot:
        """The snapshot, once the first full read has finished, however long that takes.

        A plain wait on an event, so cancelling the waiter always cancels it (``wait_for``
        may swallow a cancellation that races with its result, which left a task hanging)."""
        await self._loaded.wait()
        assert self._snapshot is not None
        return self._snapshot

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
            self._arrived_during_reload = []
            listings = await self._read(Collections.LISTINGS)
            # Indexing 20,000 listings takes a while: keep the event loop answering meanwhile.
            snapshot = await asyncio.to_thread(
                MarketSnapshot.build, listings=listings, loaded_at=loaded_at
            )
            arrived, self._arrived_during_reload = self._arrived_during_reload, None
            self._snapshot = snapshot
            self._loaded.set()
            _exempt_from_gc_scans()
            if arrived:
                await self.apply_events(arrived)
            self._metrics.snapshot_load_seconds.observe(time.perf_counter() - started)
            self._metrics.snapshot_listings.set(len(snapshot.listings))
            self._metrics.snapshot_loaded_at.set(loaded_at.timestamp())
            return snapshot

    async def apply_events(self, events: Sequence[PriceEvent]) -> None:
        """Bring the snapshot's listings up to date with events that arrived together
        (idempotent): one read of the listings they name per ``APPLY_CHUNK`` of them."""
        if self._arrived_during_reload is not None:
            self._arrived_during_reload.extend(events)
        snapshot = self._snapshot
        if snapshot is None:
            return  # the first full read will include them
        keys = list(dict.fromkeys(listing_id(event.asset, event.slug) for event in events))
        for start in range(0, len(keys), APPLY_CHUNK):
            chunk = keys[start : start + APPLY_CHUNK]
            async for document in self._database[Collections.LISTINGS].find(
                {"_id": {"$in": chunk}}
            ):
                try:
                    snapshot.upsert_listing(ListingRow.from_document(document))
                except (KeyError, TypeError, ValueError):
                    logger.warning(
                        "listing %s is malformed; kept the previous state", document.get("_id")
                    )
        for event in events:
            if self._recent_event_ids.add(event.event_id):
                self._metrics.live_events.inc()
        self._metrics.snapshot_listings.set(len(snapshot.listings))

    async def _read(self, collection: str) -> list[dict[str, Any]]:
        # Small batches: decoding happens on the event loop, between requests.
        cursor = self._database[collection].find({}, batch_size=1000)
        return await cursor.to_list()

    async def run(self) -> None:
        """Read in full now and then every ``refresh_seconds``; cancel to stop."""
        while True:
            try:
                await self.reload()
            except asyncio.CancelledError:
                raise
            except Exception:  # the loop must survive a database outage
                self._metrics.snapshot_failures.inc()
                logger.exception("market snapshot reload failed; keeping the previous one")
            await asyncio.sleep(self._refresh_seconds)
