"""How frames leave for one client, bounded in bytes: a client that cannot keep up is cut off.

Two ways out, chosen per connection:

* :class:`DirectOutbox`, under uvicorn's ``websockets-sansio`` protocol (what the notifier runs):
  frames are written straight to the connection's transport, synchronously, in the order they
  are offered. Fanning an event out costs one ``transport.write`` of pre-encoded bytes per
  client, with no task switch and no ASGI round trip (``push``, which leaves the counting to
  the fan-out). What the kernel does not take waits in the transport's buffer; past
  ``limit_bytes`` the client is too slow.
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
from collections.abc import Callable, Sequence
from enum import Enum

from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from fragmenty_notifier.frames import Frame

logger = logging.getLogger(__name__)

RAW_SEND_SCOPE_KEY = "fragmenty.raw_send"

# How long a client gets to take the close frame (and what is buffered before it).
CLOSE_TIMEOUT_S = 5.0

Written = Callable[[Sequence[Frame]], None]
"""Called with frames once they are written (for metrics)."""


class Pushed(Enum):
    """What became of bytes pushed to one client."""

    WRITTEN = "written"
    GONE = "gone"  # the connection is closing: nothing to send, and nothing wrong
    TOO_SLOW = "too_slow"  # more than the limit is already waiting: nothing was sent


class RawSendMiddleware:
    """Keeps the server's own ``send`` callable in WebSocket scopes, before anything wraps it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            scope = {**scope, RAW_SEND_SCOPE_KEY: send}
        await self.app(scope, receive, send)


class Outbox(ABC):
    def __init__(self, limit_bytes: int, written: Written) -> None:
        self.limit_bytes = limit_bytes
        self._written = written

    @abstractmethod
    def offer(self, frame: Frame) -> bool:
        """Send without waiting; False when the client is too slow (nothing was sent)."""

    def offer_many(self, frames: list[Frame], wire: bytes | None = None) -> bool:
        """Several frames at once, in order (``wire``: their bytes, joined, when known);
        False when the client is too slow."""
        return all(self.offer(frame) for frame in frames)

    @abstractmethod
    async def put(self, frame: Frame) -> None:
        """Send, waiting while the client catches up (replays: the client asked for them)."""

    @abstractmethod
    async def close(self, code: int, reason: str) -> None:
        """Send a close frame after what is already on its way, then end the connection."""

    @abstractmethod
    async def stop(self) -> None:
        """The connection is over: release what the outbox holds."""


class DirectOutbox(Outbox):
    def __init__(
        self, protocol: WebSocketsSansIOProtocol, limit_bytes: int, written: Written
    ) -> None:
        super().__init__(limit_bytes, written)
        self._protocol = protocol
        self._transport = protocol.transport

    @classmethod
    def attach(cls, websocket: WebSocket, limit_bytes: int, written: Written) -> Outbox | None:
        """A direct outbox when the server is uvicorn's sansio protocol without compression."""
        send = websocket.scope.get(RAW_SEND_SCOPE_KEY)
        protocol = getattr(send, "__self__", None)
        if not isinstance(protocol, WebSocketsSansIOProtocol) or protocol.conn.extensions:
            return None
        return cls(protocol, limit_bytes, written)

    def _open(self) -> bool:
        # Every way out of the OPEN state closes the transport (a close frame received, the
        # connection lost, a protocol error), except a close the server sent itself, which
        # sets ``close_sent`` first. Two cheap checks, on the fan-out's hot path.
        return not (self._protocol.close_sent or self._transport.is_closing())

    def offer(self, frame: Frame) -> bool:
        return self.offer_many([frame], frame.wire)

    def offer_many(self, frames: list[Frame], wire: bytes | None = None) -> bool:
        pushed = self.push(wire if wire is not None else b"".join([f.wire for f in frames]))
        if pushed is Pushed.WRITTEN:
            self._written(frames)
        return pushed is not Pushed.TOO_SLOW

    def push(self, wire: bytes) -> Pushed:
        """Write the bytes of whole frames now; the caller counts them (the fan-out's hot path).

        One write (one system call) for all of a batch's frames: what a busy moment batches
        together costs a socket once, not once per event.
        """
        transport = self._transport
        if self._protocol.close_sent or transport.is_closing():  # self._open(), inlined
            return Pushed.GONE
        if transport.get_write_buffer_size() > self.limit_bytes:
            return Pushed.TOO_SLOW
        transport.write(wire)
        return Pushed.WRITTEN

    async def put(self, frame: Frame) -> None:
        while self._open() and not self._protocol.writable.is_set():
            await self._protocol.writable.wait()
        if self._open():
            self._transport.write(frame.wire)
            self._written((frame,))

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
        """Nothing to release: the transport belongs to uvicorn."""


class QueuedOutbox(Outbox):
    def __init__(self, websocket: WebSocket, limit_bytes: int, written: Written) -> None:
        super().__init__(limit_bytes, written)
        self._websocket = websocket
        self._queue: asyncio.Queue[Frame] = asyncio.Queue()
        self._queued_bytes = 0
        self._room = asyncio.Event()  # set while at most half the limit is queued
        self._room.set()
        self._writer = asyncio.create_task(self._write_forever(), name="ws-writer")

    def offer(self, frame: Frame) -> bool:
        if self._queued_bytes + len(frame) > self.limit_bytes:
            return False
        self._queued_bytes += len(frame)
        self._queue.put_nowait(frame)
        return True

    async def put(self, frame: Frame) -> None:
        await self._room.wait()
        self._queued_bytes += len(frame)
        if self._queued_bytes > self.limit_bytes // 2:
            self._room.clear()
        self._queue.put_nowait(frame)

    async def _write_forever(self) -> None:
        try:
            while True:
                frame = await self._queue.get()
                self._queued_bytes -= len(frame)
                if self._queued_bytes <= self.limit_bytes // 2:
                    self._room.set()
                await self._websocket.send_text(frame.text)
                self._written((frame,))
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


def open_outbox(websocket: WebSocket, limit_bytes: int, written: Written) -> Outbox:
    return DirectOutbox.attach(websocket, limit_bytes, written) or QueuedOutbox(
        websocket, limit_bytes, written
    )
