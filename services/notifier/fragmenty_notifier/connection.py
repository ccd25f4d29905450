"""One client socket: its bounded outbox, and closing.

Nothing here waits for a socket on the fan-out's behalf: a frame is written (or held for a
client that is behind) at once, or, when this client already has more than its limit waiting,
the connection is closed with 1013 (try again later). So a client that cannot keep up costs
everyone else nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

from starlette.websockets import WebSocket

from fragmenty_notifier.frames import Frame
from fragmenty_notifier.metrics import NotifierMetrics
from fragmenty_notifier.outbox import Outbox, Pushed, open_outbox

logger = logging.getLogger(__name__)

# WebSocket close codes (RFC 6455 section 7.4.1).
CLOSE_GOING_AWAY = 1001
CLOSE_POLICY_VIOLATION = 1008
CLOSE_INTERNAL_ERROR = 1011
CLOSE_TRY_AGAIN_LATER = 1013


@dataclass(frozen=True)
class ConnectionLimits:
    send_buffer_bytes: int
    max_subscriptions: int
    max_client_errors: int
    max_client_frames_per_s: float
    max_replay_events: int


class ClientConnection:
    """What every socket endpoint shares: its outbox, and closing."""

    endpoint = "ws"
    # Whether the hub fans live events out to this connection (see fanout.py).
    receives_events = False
    # Set by start(); a plain attribute, read once per socket on the fan-out's hot path.
    outbox: Outbox

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
        self._closing: asyncio.Task[None] | None = None

    @property
    def closed(self) -> bool:
        return self._closing is not None

    def start(self) -> None:
        """Call once the handshake is accepted."""
        self.outbox = open_outbox(
            self.websocket, self.limits.send_buffer_bytes, self._metrics.frames_written
        )

    def send_control(self, text: str) -> None:
        """An answer to the client (subscribed, pong, error): now, or the client is too slow."""
        if self._closing is None and self.outbox.push([Frame(text)]) is Pushed.TOO_SLOW:
            self.drop_too_slow()

    async def send_waiting(self, frame: Frame) -> None:
        """Send, waiting while the client catches up: for what it asked for (replays, lists)."""
        if self._closing is None:
            await self.outbox.put(frame)

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
        outbox: Outbox | None = getattr(self, "outbox", None)
        if outbox is not None:
            await outbox.stop()
