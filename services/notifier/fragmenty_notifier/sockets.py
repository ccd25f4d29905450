"""The WebSocket endpoints: handshake checks, then one reader loop per connection.

Refusals happen before the handshake completes, as plain HTTP responses: 403 for an Origin not
on the allowlist, 429 for too many sockets from one address, 503 when the instance is full or
shutting down, 400 for a malformed ``since``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass

from starlette.responses import JSONResponse
from starlette.websockets import WebSocket

from fragmenty_notifier.connection import (
    CLOSE_INTERNAL_ERROR,
    ClientConnection,
    ConnectionLimits,
)
from fragmenty_notifier.event_store import EventStore
from fragmenty_notifier.hub import Hub, Refusal
from fragmenty_notifier.legacy import LegacyConnection, LegacyLists, LegacyView
from fragmenty_notifier.metrics import NotifierMetrics
from fragmenty_notifier.stream import StreamConnection

logger = logging.getLogger(__name__)

MAX_SINCE_LENGTH = 160
WORKER_HEADER = b"x-fragmenty-worker"


@dataclass(frozen=True)
class OriginPolicy:
    allowed: frozenset[str]
    allow_missing: bool

    @classmethod
    def of(cls, origins: list[str], allow_missing: bool) -> OriginPolicy:
        return cls(frozenset(_normalise(origin) for origin in origins), allow_missing)

    def permits(self, origin: str | None) -> bool:
        if origin is None:
            return self.allow_missing
        return "*" in self.allowed or _normalise(origin) in self.allowed


def _normalise(origin: str) -> str:
    return origin.strip().rstrip("/").lower()


class SocketEndpoints:
    def __init__(
        self,
        hub: Hub,
        store: EventStore,
        metrics: NotifierMetrics,
        limits: ConnectionLimits,
        origins: OriginPolicy,
        legacy_lists: LegacyLists,
        worker: int | None = None,
    ) -> None:
        self._hub = hub
        self._store = store
        self._legacy_lists = legacy_lists
        # Which worker process took the socket (workers.py), told to the client on the
        # handshake: for operators, and for the tests that check how sockets are spread.
        self._accept_headers = [(WORKER_HEADER, str(worker).encode())] if worker is not None else []
        self._metrics = metrics
        self._limits = limits
        self._origins = origins

    async def stream(self, websocket: WebSocket) -> None:
        """``/ws``: subscriptions with filters; ``?since=<event_id>`` resumes."""
        since = websocket.query_params.get("since")
        if since is not None and not 0 < len(since) <= MAX_SINCE_LENGTH:
            await self._deny(websocket, Refusal(400, "bad_request", "since must be an event id"))
            return
        client_host = await self._admit(websocket)
        if client_host is None:
            return
        connection = StreamConnection(
            websocket,
            client_host,
            self._limits,
            self._metrics,
            self._store,
            self._hub.windows,
            since,
        )
        await self._serve(connection, connection.handle_text)

    def legacy(self, view: LegacyView) -> Callable[[WebSocket], Awaitable[None]]:
        """The original project's sockets: the view's complete list, again on every change."""

        async def endpoint(websocket: WebSocket) -> None:
            client_host = await self._admit(websocket)
            if client_host is None:
                return
            connection = LegacyConnection(websocket, client_host, self._limits, self._metrics, view)

            async def send_lists() -> None:
                if not await connection.send_lists(self._legacy_lists):
                    connection.drop(CLOSE_INTERNAL_ERROR, "listings unavailable", reason="storage")

            await self._serve(connection, _ignore, on_open=send_lists)

        return endpoint

    async def _admit(self, websocket: WebSocket) -> str | None:
        """The client's address if it may connect; otherwise refuse the handshake."""
        if not self._origins.permits(websocket.headers.get("origin")):
            await self._deny(websocket, Refusal(403, "origin", "origin not allowed"))
            return None
        client_host = websocket.client.host if websocket.client else "unknown"
        refusal = self._hub.admit(client_host)
        if refusal is not None:
            await self._deny(websocket, refusal)
            return None
        return client_host

    async def _deny(self, websocket: WebSocket, refusal: Refusal) -> None:
        self._metrics.handshakes_refused.labels(refusal.reason).inc()
        await websocket.send_denial_response(
            JSONResponse({"detail": refusal.message}, status_code=refusal.status_code)
        )

    async def _serve(
        self,
        connection: ClientConnection,
        on_text: Callable[[str | None], None],
        on_open: Callable[[], Coroutine[None, None, None]] | None = None,
    ) -> None:
        websocket = connection.websocket
        try:
            await websocket.accept(headers=self._accept_headers)
        except BaseException:
            self._hub.release(connection.client_host)
            raise
        connection.start()
        self._hub.add(connection)
        opener: asyncio.Task[None] | None = (
            asyncio.create_task(on_open()) if on_open is not None else None
        )
        try:
            while not connection.closed:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    break
                on_text(message.get("text"))
        except Exception as error:  # a broken socket ends the connection, nothing more
            logger.debug("connection from %s ended: %r", connection.client_host, error)
        finally:
            self._hub.remove(connection)
            if opener is not None:
                opener.cancel()
            await connection.finish()


def _ignore(_: str | None) -> None:
    """The original sockets took no input; frames from their clients are read and dropped."""
