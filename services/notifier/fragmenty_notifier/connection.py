"""One client socket: a bounded send queue drained by a writer task of its own.

The hub hands events to every connection synchronously (``offer``), and never waits for a
socket: a frame goes into the connection's queue, or, when that queue is full, the connection is
closed with 1013 (try again later). So a client that cannot keep up costs everyone else nothing
but one failed ``put_nowait``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import NamedTuple

from starlette.websockets import WebSocket

from fragmenty_notifier.envelope import Envelope
from fragmenty_notifier.metrics import NotifierMetrics
from fragmenty_notifier.recent_ids import RecentIds

logger = logging.getLogger(__name__)

# WebSocket close codes (RFC 6455 section 7.4.1).
CLOSE_GOING_AWAY = 1001
CLOSE_POLICY_VIOLATION = 1008
CLOSE_INTERNAL_ERROR = 1011
CLOSE_TRY_AGAIN_LATER = 1013

# How many recent event ids each connection remembers to drop duplicates: far more than can be
# in flight at the seam between a replay and live delivery, or around a broker reconnect.
CONNECTION_SEEN_IDS = 4096

# Bound on closing a client that does not answer the close handshake.
CLOSE_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class ConnectionLimits:
    send_queue_frames: int
    max_subscriptions: int
    max_client_errors: int
    max_client_frames_per_s: float
    max_replay_events: int


class Outgoing(NamedTuple):
    frame: str
    envelope: Envelope | None  # set for live event frames, whose latency is measured
    replayed: bool = False


class ClientConnection(ABC):
    """What every socket endpoint shares: queueing, writing, dedupe, closing."""

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
        self._queue: asyncio.Queue[Outgoing] = asyncio.Queue(maxsize=limits.send_queue_frames)
        self._seen = RecentIds(CONNECTION_SEEN_IDS)
        self._writer: asyncio.Task[None] | None = None
        self._closing: asyncio.Task[None] | None = None
        self._live_out = metrics.events_out.labels("live")
        self._replay_out = metrics.events_out.labels("replay")
        self._latency_published = metrics.fanout_latency.labels("published")
        self._latency_received = metrics.fanout_latency.labels("received")

    @property
    def closed(self) -> bool:
        return self._closing is not None

    def start(self) -> None:
        self._writer = asyncio.create_task(self._write_forever(), name=f"ws-writer-{id(self)}")

    @abstractmethod
    def frame_for(self, envelope: Envelope) -> str | None:
        """The frame this client should get for an event, or None when it did not ask for it."""

    def offer(self, envelope: Envelope) -> None:
        """Queue a live event for this client if it wants it; never waits."""
        if self._closing is not None:
            return
        frame = self.frame_for(envelope)
        if frame is None or not self._seen.add(envelope.event_id):
            return
        self.enqueue(Outgoing(frame, envelope))

    def enqueue(self, item: Outgoing) -> None:
        """Queue a frame, or close the connection when its queue is full (it cannot keep up)."""
        if self._closing is not None:
            return
        try:
            self._queue.put_nowait(item)
        except asyncio.QueueFull:
            self.drop(CLOSE_TRY_AGAIN_LATER, "too slow: send queue full", reason="slow")

    def send_control(self, frame: str) -> None:
        self.enqueue(Outgoing(frame, None))

    async def put_waiting(self, item: Outgoing) -> None:
        """Queue a frame, waiting for room: for replays, which the client asked to receive."""
        await self._queue.put(item)

    def remember(self, event_id: str) -> bool:
        """Mark an event as sent to this client; False if it already was."""
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

    def _begin_close(self, code: int, message: str) -> None:
        if self._writer is not None:
            self._writer.cancel()
        self._closing = asyncio.create_task(self._close(code, message))

    async def _close(self, code: int, message: str) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.websocket.close(code, message[:120]), CLOSE_TIMEOUT_S)

    async def close(self, code: int, message: str) -> None:
        """Close on the server's behalf (shutdown) and wait until the close frame is out."""
        if self._closing is None:
            self._begin_close(code, message)
        assert self._closing is not None
        await asyncio.shield(self._closing)

    async def finish(self) -> None:
        """The client is gone: stop writing, and let a pending close complete."""
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._writer
        if self._closing is not None:
            with contextlib.suppress(Exception):
                await self._closing

    async def _write_forever(self) -> None:
        send = self.websocket.send_text
        try:
            while True:
                item = await self._queue.get()
                await send(item.frame)
                if item.envelope is not None:
                    self._record_live(item.envelope)
                elif item.replayed:
                    self._replay_out.inc()
        except asyncio.CancelledError:
            raise
        except Exception as error:  # the socket went away under us; the reader notices too
            logger.debug("writer for %s stopped: %r", self.client_host, error)

    def _record_live(self, envelope: Envelope) -> None:
        self._live_out.inc()
        now = time.time()
        if envelope.published_at is not None:
            self._latency_published.observe(max(0.0, now - envelope.published_at))
        else:
            self._latency_received.observe(max(0.0, now - envelope.received_at))
