"""Keeping the cyclic garbage collector's pauses out of the fan-out's tail.

With thousands of connections a worker holds about 150 long-lived objects per socket (uvicorn's
protocol, the WebSocket parser, the ASGI task, this service's connection): 750,000 at 5,000
sockets. A full collection walks all of them and stops the event loop for 100-300 ms on this
machine, and with CPython's default thresholds one came every few seconds: each batch's
short-lived containers, caught alive by a young collection in the middle of a fan-out pass,
were promoted and counted towards the next full collection. Measured in the fan-out
benchmark (2 workers, 5,000-10,000 batched clients): full collections of 100 ms to 1.4 s, and
the p99 followed them.

So:

* at start, everything imported and built so far is frozen (never walked again), and the young
  generation's threshold is raised so that a fan-out pass's temporaries die before a
  collection sees them (:func:`settle_collector`);
* as connections arrive, their objects are frozen too, a few seconds after they open
  (:class:`ConnectionFreezer`): a full collection then walks only what came since, not every
  connection. Frozen objects are still freed by reference counting when a connection closes;
  only garbage in reference cycles waits (what is already dead when a freeze comes is
  collected first), until enough connections have closed (a quarter of those open, at least
  200) or an hour has passed since the last reclaim with anything frozen since, when one
  full collection over everything takes it back. That pause is as long as the old full collections, but it comes once per quarter of
  the clients replaced instead of every few seconds.

Every collection's length is a metric (``fragmenty_notifier_gc_pause_seconds``).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from typing import Any, Protocol

from fragmenty_notifier.metrics import FastHistogram

logger = logging.getLogger(__name__)

# Net container allocations between young collections (CPython's default is 700). A fan-out
# pass over 10,000 sockets allocates a few per socket at most.
YOUNG_THRESHOLD = 50_000


def settle_collector(pauses: FastHistogram | None = None) -> None:
    """Freeze what exists now, raise the young threshold, and time every collection."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
    if pauses is not None:
        gc.callbacks.append(_PauseTimer(pauses))


class _PauseTimer:
    """A ``gc.callbacks`` entry: each collection's length, by generation."""

    def __init__(self, pauses: FastHistogram) -> None:
        self._series = [pauses.labels(str(generation)) for generation in range(3)]
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self._series[info["generation"]].observe(time.perf_counter() - self._started)


class ConnectionCounter(Protocol):
    """What the freezer watches (the hub)."""

    opened_total: int
    closed_total: int

    def __len__(self) -> int: ...


class ConnectionFreezer:
    """Freezes new connections' objects; takes frozen garbage back now and then (see above)."""

    def __init__(
        self,
        connections: ConnectionCounter,
        *,
        every_s: float = 2.0,
        reclaim_share: float = 0.25,
        reclaim_min_closed: int = 200,
        reclaim_after_s: float = 3600.0,
    ) -> None:
        self._connections = connections
        self._every_s = every_s
        self._reclaim_share = reclaim_share
        self._reclaim_min_closed = reclaim_min_closed
        self._reclaim_after_s = reclaim_after_s
        self._opened_at_freeze = connections.opened_total
        self._closed_at_reclaim = connections.closed_total
        self._reclaimed_at = time.monotonic()
        self._frozen_since_reclaim = False

    def tick(self) -> str | None:
        """One look: ``"reclaimed"``, ``"frozen"`` or None (nothing to do)."""
        connections = self._connections
        closed = connections.closed_total - self._closed_at_reclaim
        due = closed >= max(self._reclaim_min_closed, self._reclaim_share * len(connections))
        overdue = (
            self._frozen_since_reclaim
            and time.monotonic() - self._reclaimed_at >= self._reclaim_after_s
        )
        if due or overdue:
            self._reclaim()
            return "reclaimed"
        if connections.opened_total != self._opened_at_freeze:
            # The young generations first (cheap: at most the young threshold's objects), so
            # that cycles already dead are freed, not frozen; then the rest is frozen in
            # constant time (the generations' lists are moved, not walked).
            gc.collect(1)
            gc.freeze()
            self._opened_at_freeze = connections.opened_total
            self._frozen_since_reclaim = True
            return "frozen"
        return None

    def _reclaim(self) -> None:
        started = time.perf_counter()
        gc.unfreeze()
        found = gc.collect()
        gc.freeze()
        self._opened_at_freeze = self._connections.opened_total
        self._closed_at_reclaim = self._connections.closed_total
        self._reclaimed_at = time.monotonic()
        self._frozen_since_reclaim = False
        logger.info(
            "took back %d objects of closed connections in %.0f ms (%d connections open)",
            found,
            1000 * (time.perf_counter() - started),
            len(self._connections),
        )

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self._every_s)
            self.tick()
