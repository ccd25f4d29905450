"""One client socket: dedupe, a bounded outbox, and closing.

The hub hands events to every connection synchronously (``offer``) and never waits for a socket:
a frame is written (or buffered) at once, or, when this client already has more than its limit
waiting, the connection is closed with 1013 (try again later). So a client that cannot keep up
costs everyone else nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from abc import ABC, abstractmethod
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

from starlette.websockets import WebSocket

from fragmenty_notifier.envelope import Envelope
from fragmenty_notifier.frames import Frame
from fragmenty_notifier.metrics import NotifierMetrics
from fragmenty_notifier.outbox import DirectOutbox, Outbox, open_outbox
from fragmenty_notifier.recent_ids import RecentIds

logger = logging.getLogger(__name__)

# WebSocket close codes (RFC 6455 section 7.4.1).
CLOSE_GOING_AWAY = 1001
CLOSE_POLICY_VIOLATION = 1008
CLOSE_INTERNAL_ERROR = 1011
CLOSE_TRY_AGAIN_LATER = 1013

# How many recent event ids a resuming connection remembers to drop duplicates: far more than
# can be in flight at the seam between its replay and live delivery.
CONNECTION_SEEN_IDS = 4096


@dataclass(frozen=True)
class ConnectionLimits:
    send_buffer_bytes: int
    max_subscriptions: int
    max_client_errors: int
    max_client_frames_per_s: float
    max_replay_events: int


class ClientConnection(ABC):
    """What every socket endpoint shares: output, dedupe, closing."""

    endpoint = "ws"

    def __init__(
        self,
        websocket: WebSocket,
        client_host: str,
        limits: ConnectionLimits,
        metrics: NotifierMetrics,
    ) -> None:
        self.websocket = websocket
        self.client_host = client_host
        self.limits = limits
        self._metrics = metrics
        # The hub fans each event_id out once, so live delivery alone never repeats an event;
        # only a connection whose replay meets live delivery needs a memory of its own.
        self._seen: RecentIds | None = None
        self._outbox: Outbox | None = None
        # The same outbox when it can take a push: the hub writes shared bytes through it.
        self.direct: DirectOutbox | None = None
        self._closing: asyncio.Task[None] | None = None
        self._frames_written = metrics.frames_written

    @property
    def closed(self) -> bool:
        return self._closing is not None

    @property
    def outbox(self) -> Outbox:
        assert self._outbox is not None, "start() first"
        return self._outbox

    def start(self) -> None:
        """Call once the handshake is accepted."""
        self._outbox = open_outbox(self.websocket, self.limits.send_buffer_bytes, self._written)
        self.direct = self._outbox if isinstance(self._outbox, DirectOutbox) else None

    @abstractmethod
    def frame_for(self, envelope: Envelope) -> Frame | None:
        """The frame this client should get for an event, or None when it did not ask for it."""

    def offer(self, envelope: Envelope) -> None:
        """Send a live event to this client if it wants it; never waits."""
        if self._closing is not None:
            return
        frame = self.frame_for(envelope)
        if frame is None:
            return
        if self._seen is not None and not self._seen.add(envelope.event_id):
            return
        self.send_now(frame)

    def frames_key(self) -> Hashable | None:
        """What decides this client's frames: clients with the same key get the same frames for
        the same events. None when this connection's frames are its own (it remembers ids
        after a replay, or holds events back)."""
        return None

    def shared_key(self) -> Hashable | None:
        """The hub's grouping: connections with the same key share a batch's frames and bytes,
        worked out once, and pushed to each through :attr:`direct`. None when this connection
        takes the batch through :meth:`offer_batch` instead."""
        if self._closing is not None or self.direct is None:
            return None
        return self.frames_key()

    def frames_for(self, envelopes: list[Envelope]) -> list[Frame]:
        """The frames of a batch for this client (and every client with the same key)."""
        return [frame for envelope in envelopes if (frame := self.frame_for(envelope)) is not None]

    def offer_batch(self, envelopes: list[Envelope]) -> None:
        """Live events that arrived together: what this client wants, in one write."""
        if self._closing is not None:
            return
        frames = self._own_frames(envelopes)
        if frames and not self.outbox.offer_many(frames):
            self.drop_too_slow()

    def _own_frames(self, envelopes: list[Envelope]) -> list[Frame]:
        """This client's frames of a batch, less the events it already got (after a replay)."""
        frames = self.frames_for(envelopes)
        seen = self._seen
        if seen is None:
            return frames
        return [f for f in frames if f.envelope is None or seen.add(f.envelope.event_id)]

    def send_now(self, frame: Frame) -> None:
        """Send at once, or close the connection when too much is already waiting for it."""
        if self._closing is None and not self.outbox.offer(frame):
            self.drop_too_slow()

    def send_control(self, text: str) -> None:
        self.send_now(Frame(text))

    async def send_waiting(self, frame: Frame) -> None:
        """Send, waiting while the client catches up: for what it asked for (replays, lists)."""
        if self._closing is None:
            await self.outbox.put(frame)

    def remember(self, event_id: str) -> bool:
        """Mark an event as sent to this client; False if it already was."""
        if self._seen is None:
            self._seen = RecentIds(CONNECTION_SEEN_IDS)
        return self._seen.add(event_id)

    def drop(self, code: int, message: str, *, reason: str) -> None:
        """Close this connection on the server's initiative (counted by reason)."""
        if self._closing is not None:
            return
        self._metrics.clients_dropped.labels(reason).inc()
        logger.info(
            "closing client %s (%s): %s", self.client_host, reason, message, extra={"code": code}
        )
        self._begin_close(code, message)

    def drop_too_slow(self) -> None:
        self.drop(CLOSE_TRY_AGAIN_LATER, "too slow: send buffer full", reason="slow")

    def _begin_close(self, code: int, message: str) -> None:
        self._closing = asyncio.create_task(self.outbox.close(code, message[:120]))

    async def close(self, code: int, message: str) -> None:
        """Close on the server's behalf (shutdown) and wait until the close frame is out."""
        if self._closing is None:
            self._begin_close(code, message)
        assert self._closing is not None
        with contextlib.suppress(Exception):
            await asyncio.shield(self._closing)

    async def finish(self) -> None:
        """The client is gone: let a pending close complete and release the outbox."""
        if self._closing is not None:
            with contextlib.suppress(Exception):
                await self._closing
        if self._outbox is not None:
            await self._outbox.stop()

    def _written(self, frames: Sequence[Frame]) -> None:
        self._frames_written.written(frames)
