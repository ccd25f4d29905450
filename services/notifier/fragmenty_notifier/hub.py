"""Every open connection of this instance, and the fan-out of each event to them.

The fan-out is the notifier's hot path: at 20 events a second and thousands of clients it
writes a hundred thousand frames a second. Connections with the same subscriptions get the same
bytes, so a batch is worked out once per group of them and then written to each with one
``transport.write``; metrics are counted per slice of sockets (one clock reading for
``FANOUT_SLICE`` of them), not per socket.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable, Hashable
from dataclasses import dataclass

from fragmenty_notifier.connection import CLOSE_GOING_AWAY, ClientConnection
from fragmenty_notifier.envelope import Envelope
from fragmenty_notifier.frames import Frame
from fragmenty_notifier.metrics import NotifierMetrics
from fragmenty_notifier.outbox import Pushed
from fragmenty_notifier.recent_ids import RecentIds

logger = logging.getLogger(__name__)

# Event ids this instance remembers having fanned out: enough for a broker outage's recovery
# window at a busy day's event rate, so recovered events that did arrive are not sent twice.
HUB_SEEN_IDS = 200_000

# Sockets written between two clock readings for the latency histogram: each frame of a slice
# is counted as written when the slice ends (about a millisecond late at most, never early).
FANOUT_SLICE = 128


class SharedFrames:
    """A batch's frames for one group of connections, their bytes, and copies not yet counted."""

    __slots__ = ("frames", "uncounted", "wire")

    def __init__(self, frames: list[Frame]) -> None:
        self.frames = frames
        self.wire = b"".join([frame.wire for frame in frames])
        self.uncounted = 0


@dataclass(frozen=True)
class Refusal:
    status_code: int
    reason: str  # metric label
    message: str


class Hub:
    def __init__(
        self, metrics: NotifierMetrics, *, max_connections: int, max_per_client: int
    ) -> None:
        self._metrics = metrics
        self._max_connections = max_connections
        self._max_per_client = max_per_client
        self._connections: set[ClientConnection] = set()
        self._per_client: Counter[str] = Counter()
        self._seen = RecentIds(HUB_SEEN_IDS)
        self._events_in = {
            source: metrics.events_in.labels(source) for source in ("broker", "recovery")
        }
        self._frames_written = metrics.frames_written
        self._observers: list[Callable[[list[Envelope]], None]] = []
        self.closing = False

    def __len__(self) -> int:
        return len(self._connections)

    @property
    def connections(self) -> tuple[ClientConnection, ...]:
        return tuple(self._connections)

    def refusal(self, client_host: str) -> Refusal | None:
        """Why a new connection from ``client_host`` may not open now, if it may not."""
        if self.closing:
            return Refusal(503, "shutdown", "the notifier is shutting down")
        if len(self._connections) >= self._max_connections:
            return Refusal(503, "total_limit", "too many connections; try again later")
        if self._per_client[client_host] >= self._max_per_client:
            return Refusal(429, "client_limit", "too many connections from this address")
        return None

    def add(self, connection: ClientConnection) -> None:
        self._connections.add(connection)
        self._per_client[connection.client_host] += 1
        self._metrics.connections.labels(connection.endpoint).inc()

    def remove(self, connection: ClientConnection) -> None:
        if connection not in self._connections:
            return
        self._connections.discard(connection)
        self._per_client[connection.client_host] -= 1
        if self._per_client[connection.client_host] <= 0:
            del self._per_client[connection.client_host]
        self._metrics.connections.labels(connection.endpoint).dec()

    def observe(self, observer: Callable[[list[Envelope]], None]) -> None:
        """Also hand every batch of fresh events to ``observer`` (after the sockets)."""
        self._observers.append(observer)

    def knows(self, event_id: str) -> bool:
        return event_id in self._seen

    def publish(self, envelope: Envelope, *, source: str = "broker") -> bool:
        """Fan an event out to every connection; False for an event already fanned out."""
        return self.publish_batch([envelope], source=source) == 1

    def publish_batch(self, envelopes: list[Envelope], *, source: str = "broker") -> int:
        """Fan out events that arrived together (each connection gets one write for all of
        them); how many were new."""
        self._events_in[source].inc(len(envelopes))
        fresh = [envelope for envelope in envelopes if self._seen.add(envelope.event_id)]
        if len(fresh) < len(envelopes):
            self._metrics.duplicates_dropped.inc(len(envelopes) - len(fresh))
        if fresh:
            self._fan_out(fresh)
            for observer in self._observers:
                observer(fresh)
        return len(fresh)

    def _fan_out(self, envelopes: list[Envelope]) -> None:
        """One pass over the connections: each group's frames are worked out when its first
        member comes up, then every member gets the same bytes in one push."""
        groups: dict[Hashable, SharedFrames] = {}
        uncounted: list[SharedFrames] = []  # groups with copies written since the last count
        since_clock = 0  # sockets written since the last clock reading
        for connection in tuple(self._connections):
            key = connection.shared_key()
            if key is None:
                connection.offer_batch(envelopes)
                continue
            group = groups.get(key)
            if group is None:
                group = groups[key] = SharedFrames(connection.frames_for(envelopes))
            if not group.frames:
                continue
            assert connection.direct is not None  # what gave it a shared_key
            pushed = connection.direct.push(group.wire)
            if pushed is Pushed.WRITTEN:
                if not group.uncounted:
                    uncounted.append(group)
                group.uncounted += 1
                since_clock += 1
                if since_clock == FANOUT_SLICE:
                    self._count_written(uncounted)
                    since_clock = 0
            elif pushed is Pushed.TOO_SLOW:
                connection.drop_too_slow()
        self._count_written(uncounted)

    def _count_written(self, uncounted: list[SharedFrames]) -> None:
        """Count the copies written since the last count (then forget them), at one clock
        reading; only the groups written to are visited, however many groups there are."""
        now = time.time()
        for group in uncounted:
            self._frames_written.written(group.frames, group.uncounted, now)
            group.uncounted = 0
        uncounted.clear()

    async def close_all(self, timeout_s: float = 5.0) -> None:
        """Graceful shutdown: refuse newcomers and say goodbye to everyone with 1001."""
        self.closing = True
        connections = tuple(self._connections)
        if not connections:
            return
        logger.info("closing %d connections (1001)", len(connections))
        closing = [
            connection.close(CLOSE_GOING_AWAY, "server shutting down") for connection in connections
        ]
        await asyncio.wait([asyncio.ensure_future(close) for close in closing], timeout=timeout_s)
