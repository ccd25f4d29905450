"""How frames leave for one client, bounded in bytes: a client that cannot keep up is cut off.

Two ways out, chosen per connection:

* :class:`DirectOutbox`, under uvicorn's ``websockets-sansio`` protocol (what the notifier runs):
  frames are written straight to the connection's transport, synchronously, in the order they
  are offered. Fanning an event out costs one ``transport.write`` of pre-encoded bytes per
  client, with no task switch and no ASGI round trip (``push``, which leaves the counting to
  the fan-out). A client that reads slower than frames come is coalesced: its frames wait
  here until its socket drains, then go out in one write, batched subscriptions' ``events``
  frames merged; past ``limit_bytes`` waiting, the client is too slow.
* :class:`QueuedOutbox`, for any other ASGI server: a bounded queue drained by a writer task
  through the ASGI ``send``. Slower, but it only needs the ASGI interface.

The direct way reaches into uvicorn's protocol object (found through the raw ASGI ``send``, which
:class:`RawSendMiddleware` keeps in the scope). The integration tests assert it is in use, so a
uvicorn upgrade that changes those internals fails a test instead of quietly slowing down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from abc import ABC, abstractmethod
from collections.abc import Sequence
from enum import Enum
from typing import Protocol

from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from fragmenty_notifier.frames import Frame, coalesce

logger = logging.getLogger(__name__)

RAW_SEND_SCOPE_KEY = "fragmenty.raw_send"

# How long a client gets to take the close frame (and what is buffered before it).
CLOSE_TIMEOUT_S = 5.0


class Accounting(Protocol):
    """Counts frames once written (``metrics.FrameAccounting``)."""

    def written(self, frames: Sequence[Frame]) -> None: ...

    def caught_up(self, waited: int, written: int) -> None:
        """``waited`` frames that waited for a client that was behind went out as ``written``."""


class Pushed(Enum):
    """What became of frames pushed to one client."""

    WRITTEN = "written"  # handed to the socket now; the caller counts them
    HELD = "held"  # waiting for the client to catch up; counted when written
    GONE = "gone"  # the connection is closing: nothing to send, and nothing wrong
    TOO_SLOW = "too_slow"  # more than the limit would be waiting: nothing was taken


class RawSendMiddleware:
    """Keeps the server's own ``send`` callable in WebSocket scopes, before anything wraps it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            scope = {**scope, RAW_SEND_SCOPE_KEY: send}
        await self.app(scope, receive, send)


class Outbox(ABC):
    def __init__(self, limit_bytes: int, accounting: Accounting) -> None:
        self.limit_bytes = limit_bytes
        self._accounting = accounting

    @abstractmethod
    def push(self, frames: list[Frame], wire: bytes | None = None) -> Pushed:
        """Send frames without waiting, in order (``wire``: their bytes joined, when known)."""

    @abstractmethod
    async def put(self, frame: Frame) -> None:
        """Send, waiting while the client catches up (replays, lists: the client asked)."""

    @abstractmethod
    async def close(self, code: int, reason: str) -> None:
        """Send a close frame after what is already on its way, then end the connection."""

    @abstractmethod
    async def stop(self) -> None:
        """The connection is over: release what the outbox holds."""


def _joined(frames: list[Frame]) -> bytes:
    return b"".join([frame.wire for frame in frames])


class DirectOutbox(Outbox):
    """Writes straight to uvicorn's transport; coalesces while the client is behind.

    While the transport has paused writing (its buffer above the high-water mark: the client
    reads slower than frames come), new frames wait here instead of piling up in the transport;
    once it drains they go out in one write, neighbouring ``events`` frames of a batched
    subscription merged into one (:func:`coalesce`). Only when more than ``limit_bytes`` would
    be waiting (here and in the transport) is the client too slow.
    """

    def __init__(
        self, protocol: WebSocketsSansIOProtocol, limit_bytes: int, accounting: Accounting
    ) -> None:
        super().__init__(limit_bytes, accounting)
        self._protocol = protocol
        self._transport = protocol.transport
        self._writable = protocol.writable
        self._backlog: list[Frame] = []
        self._backlog_bytes = 0
        self._flusher: asyncio.Task[None] | None = None

    @classmethod
    def attach(
        cls, websocket: WebSocket, limit_bytes: int, accounting: Accounting
    ) -> Outbox | None:
        """A direct outbox when the server is uvicorn's sansio protocol without compression."""
        send = websocket.scope.get(RAW_SEND_SCOPE_KEY)
        protocol = getattr(send, "__self__", None)
        if not isinstance(protocol, WebSocketsSansIOProtocol) or protocol.conn.extensions:
            return None
        return cls(protocol, limit_bytes, accounting)

    def _open(self) -> bool:
        # Every way out of the OPEN state closes the transport (a close frame received, the
        # connection lost, a protocol error), except a close the server sent itself, which
        # sets ``close_sent`` first. Two cheap checks, on the fan-out's hot path.
        return not (self._protocol.close_sent or self._transport.is_closing())

    @property
    def behind(self) -> bool:
        return bool(self._backlog) or not self._writable.is_set()

    def push(self, frames: list[Frame], wire: bytes | None = None) -> Pushed:
        """The fan-out's hot path: one write (one system call) for all of a batch's frames."""
        transport = self._transport
        if self._protocol.close_sent or transport.is_closing():  # self._open(), inlined
            return Pushed.GONE
        if self._backlog or not self._writable.is_set():  # self.behind, inlined
            return self._hold(frames)
        transport.write(wire if wire is not None else _joined(frames))
        return Pushed.WRITTEN

    def _hold(self, frames: list[Frame]) -> Pushed:
        size = sum(len(frame) for frame in frames)
        waiting = self._backlog_bytes + self._transport.get_write_buffer_size()
        if waiting + size > self.limit_bytes:
            return Pushed.TOO_SLOW
        self._backlog.extend(frames)
        self._backlog_bytes += size
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush_when_drained(), name="ws-coalesce")
        return Pushed.HELD

    async def _flush_when_drained(self) -> None:
        try:
            while self._backlog and self._open():
                await self._writable.wait()  # uvicorn sets it on resume and on connection loss
                self._write_backlog()
        finally:
            self._flusher = None

    def _write_backlog(self) -> None:
        if not self._backlog or not self._open():
            return
        waited = self._backlog
        frames = coalesce(waited)
        self._backlog, self._backlog_bytes = [], 0
        self._transport.write(_joined(frames))
        self._accounting.written(frames)
        self._accounting.caught_up(len(waited), len(frames))

    async def put(self, frame: Frame) -> None:
        while self._open() and not self._writable.is_set():
            await self._writable.wait()
        if self._open():
            self._write_backlog()  # what waited goes first
            self._transport.write(frame.wire)
            self._accounting.written((frame,))

    async def close(self, code: int, reason: str) -> None:
        # What uvicorn's own close does, minus waiting for the buffer to drain first: a client
        # that does not read would keep that wait (and the connection) forever.
        protocol = self._protocol
        if not self._open():
            return
        protocol.queue.put_nowait({"type": "websocket.disconnect", "code": code, "reason": reason})
        protocol.conn.send_close(code, reason)
        self._transport.write(b"".join(protocol.conn.data_to_send()))
        protocol.close_sent = True
        # close() flushes the buffer first; abort() if the client will not take it in time.
        self._transport.close()
        protocol.loop.call_later(CLOSE_TIMEOUT_S, self._transport.abort)

    async def stop(self) -> None:
        """The transport belongs to uvicorn; only what waited here is let go."""
        self._backlog, self._backlog_bytes = [], 0
        if self._flusher is not None:
            self._flusher.cancel()


class QueuedOutbox(Outbox):
    """A bounded queue drained by a writer task through the ASGI ``send`` (any server). The
    writer takes everything waiting at once and coalesces it, as the direct outbox does."""

    def __init__(self, websocket: WebSocket, limit_bytes: int, accounting: Accounting) -> None:
        super().__init__(limit_bytes, accounting)
        self._websocket = websocket
        self._waiting: list[Frame] = []
        self._queued_bytes = 0
        self._wake = asyncio.Event()
        self._room = asyncio.Event()  # set while at most half the limit is queued
        self._room.set()
        self._writer = asyncio.create_task(self._write_forever(), name="ws-writer")

    def push(self, frames: list[Frame], wire: bytes | None = None) -> Pushed:
        size = sum(len(frame) for frame in frames)
        if self._queued_bytes + size > self.limit_bytes:
            return Pushed.TOO_SLOW
        self._enqueue(frames, size)
        return Pushed.HELD

    def _enqueue(self, frames: list[Frame], size: int) -> None:
        self._queued_bytes += size
        if self._queued_bytes > self.limit_bytes // 2:
            self._room.clear()
        self._waiting.extend(frames)
        self._wake.set()

    async def put(self, frame: Frame) -> None:
        await self._room.wait()
        self._enqueue([frame], len(frame))

    async def _write_forever(self) -> None:
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                waited, self._waiting, self._queued_bytes = self._waiting, [], 0
                self._room.set()
                frames = coalesce(waited)
                if len(waited) > 1:
                    self._accounting.caught_up(len(waited), len(frames))
                for frame in frames:
                    await self._websocket.send_text(frame.text)
                    self._accounting.written((frame,))
        except asyncio.CancelledError:
            raise
        except Exception as error:  # the socket went away under us; the reader notices too
            logger.debug("writer stopped: %r", error)

    async def close(self, code: int, reason: str) -> None:
        self._writer.cancel()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._websocket.close(code, reason), CLOSE_TIMEOUT_S)

    async def stop(self) -> None:
        self._writer.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._writer


def open_outbox(websocket: WebSocket, limit_bytes: int, accounting: Accounting) -> Outbox:
    return DirectOutbox.attach(websocket, limit_bytes, accounting) or QueuedOutbox(
        websocket, limit_bytes, accounting
    )
