"""Every open connection of this instance: admission limits, the fan-out of each batch of
events to the subscribers (``fanout.py``), and goodbyes at shutdown."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

from fragmenty_notifier.admission import ConnectionCounts, LocalCounts
from fragmenty_notifier.connection import CLOSE_GOING_AWAY, ClientConnection
from fragmenty_notifier.envelope import Envelope
from fragmenty_notifier.fanout import BatchWindows, Subscriber, choose_frames, write_frames
from fragmenty_notifier.metrics import NotifierMetrics
from fragmenty_shared.recent_ids import RecentIds

logger = logging.getLogger(__name__)

# Event ids this instance remembers having fanned out: enough for a broker outage's recovery
# window at a busy day's event rate, so recovered events that did arrive are not sent twice.
HUB_SEEN_IDS = 200_000


@dataclass(frozen=True)
class Refusal:
    status_code: int
    reason: str  # metric label
    message: str


class Hub:
    def __init__(
        self,
        metrics: NotifierMetrics,
        *,
        max_connections: int,
        max_per_client: int,
        counts: ConnectionCounts | None = None,
    ) -> None:
        self._metrics = metrics
        self._max_connections = max_connections
        self._max_per_client = max_per_client
        # Machine-wide when worker processes share the port (admission.py).
        self._counts = counts or LocalCounts()
        # Admitted handshakes whose connection is not added yet, counted already (see admit).
        self._admitted: Counter[str] = Counter()
        self._connections: set[ClientConnection] = set()
        self._subscribers: dict[ClientConnection, Subscriber] = {}  # insertion order kept
        self.windows = BatchWindows(self._deliver)
        self._seen = RecentIds(HUB_SEEN_IDS)
        self._events_in = {
            source: metrics.events_in.labels(source) for source in ("broker", "recovery")
        }
        self._frames_written = metrics.frames_written
        self._observers: list[Callable[[list[Envelope]], None]] = []
        self.closing = False
        # Connections ever added and removed (garbage.ConnectionFreezer watches them).
        self.opened_total = 0
        self.closed_total = 0

    def __len__(self) -> int:
        return len(self._connections)

    @property
    def connections(self) -> tuple[ClientConnection, ...]:
        return tuple(self._connections)

    def refusal(self, client_host: str) -> Refusal | None:
        """Why a new connection from ``client_host`` may not open now, if it may not."""
        if self.closing:
            return Refusal(503, "shutdown", "the notifier is shutting down")
        if self._counts.total() >= self._max_connections:
            return Refusal(503, "total_limit", "too many connections; try again later")
        if self._counts.of(client_host) >= self._max_per_client:
            return Refusal(429, "client_limit", "too many connections from this address")
        return None

    def admit(self, client_host: str) -> Refusal | None:
        """Like :meth:`refusal`, but an admitted connection is counted at once.

        The handshake's answer goes out before the connection is added, and another worker may
        take the client's next handshake in between: counting only in :meth:`add` would let
        sequential connections pass the machine-wide limit. :meth:`add` then takes over the
        count, or :meth:`release` gives it back when the connection never opens.
        """
        refusal = self.refusal(client_host)
        if refusal is None:
            self._counts.opened(client_host)
            self._admitted[client_host] += 1
        return refusal

    def release(self, client_host: str) -> None:
        """Give back the count of an admitted connection that was never added."""
        if self._take_admission(client_host):
            self._counts.closed(client_host)

    def _take_admission(self, client_host: str) -> bool:
        if self._admitted[client_host] <= 0:
            return False
        self._admitted[client_host] -= 1
        if self._admitted[client_host] == 0:
            del self._admitted[client_host]
        return True

    def add(self, connection: ClientConnection) -> None:
        self._connections.add(connection)
        self.opened_total += 1
        if connection.receives_events:
            self._subscribers[connection] = cast(Subscriber, connection)
        if not self._take_admission(connection.client_host):
            self._counts.opened(connection.client_host)
        self._metrics.connections.labels(connection.endpoint).inc()

    def remove(self, connection: ClientConnection) -> None:
        if connection not in self._connections:
            return
        self._connections.discard(connection)
        self.closed_total += 1
        self._subscribers.pop(connection, None)
        self._counts.closed(connection.client_host)
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
            self._deliver(fresh, None)
            self.windows.collect(fresh)
            for observer in self._observers:
                observer(fresh)
        return len(fresh)

    def _deliver(self, envelopes: list[Envelope], window_ms: int | None) -> None:
        """The fan-out: choose every subscriber's frames for the batch, then write them."""
        if envelopes:
            plan = choose_frames(tuple(self._subscribers.values()), envelopes, window_ms)
            write_frames(plan, self._frames_written)

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
