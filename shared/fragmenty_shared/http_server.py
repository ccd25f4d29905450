"""The HTTP server every service runs: uvicorn on h11, with limits on request headers.

uvicorn's default parser (httptools) keeps buffering a header that never ends and accepts a
complete header of any size: one client could grow a service by the size of what it sent, on
every connection. Here every service parses HTTP with h11 and refuses, with **431 Request Header
Fields Too Large** and a closed connection:

* a request line plus headers longer than ``FRAGMENTY_HTTP_MAX_HEADER_BYTES`` (default 16 KiB),
  whether it arrives complete or never ends (h11 stops buffering at that size);
* more than ``FRAGMENTY_HTTP_MAX_HEADERS`` header fields (default 100).

The limits hold for WebSocket handshakes too (the upgrade request is an HTTP request). They cost
the services nothing they use: browsers and clients send a few hundred bytes of headers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import h11
import uvicorn
from uvicorn.config import Config
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.server import ServerState

from fragmenty_shared.settings import Settings

TOO_LARGE = 431
LINGER_S = 2.0
_TOO_LARGE_BODY = b"Request header fields too large."


@dataclass(frozen=True)
class HeaderLimits:
    """How much request head a service reads before it refuses the request."""

    max_bytes: int
    max_count: int

    @classmethod
    def of(cls, settings: Settings) -> HeaderLimits:
        return cls(settings.http_max_header_bytes, settings.http_max_headers)


def head_size(request: h11.Request) -> int:
    """Bytes of the request line and header lines, as sent (CRLFs and ``: `` included)."""
    line = len(request.method) + len(request.target) + len(b"  HTTP/1.1\r\n")
    return line + sum(len(name) + len(value) + 4 for name, value in request.headers)


class _LimitedConnection(h11.Connection):
    """An h11 server connection that also refuses complete requests with too large a head, and
    remembers which status a refusal deserves."""

    def __init__(self, limits: HeaderLimits) -> None:
        # h11 refuses to buffer an incomplete head beyond this size (with a 431 hint).
        super().__init__(h11.SERVER, max_incomplete_event_size=limits.max_bytes)
        self.limits = limits
        self.refusal_status = 400

    def next_event(self) -> Any:
        try:
            event = super().next_event()
        except h11.RemoteProtocolError as error:
            self.refusal_status = error.error_status_hint
            raise
        if isinstance(event, h11.Request) and (
            len(event.headers) > self.limits.max_count or head_size(event) > self.limits.max_bytes
        ):
            self.refusal_status = TOO_LARGE
            raise h11.RemoteProtocolError("request head too large", error_status_hint=TOO_LARGE)
        return event


class LimitedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with :class:`HeaderLimits` (set per server by
    :func:`limited_protocol`)."""

    header_limits: ClassVar[HeaderLimits]

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.conn = _LimitedConnection(self.header_limits)
        self._refused = False

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return  # lingering after a refusal: what the client still sends is dropped unread
        super().data_received(data)

    def send_400_response(self, msg: str) -> None:
        """uvicorn calls this for any request h11 refuses; too large a head gets its 431."""
        connection = self.conn
        if not isinstance(connection, _LimitedConnection) or connection.refusal_status != 431:
            super().send_400_response(msg)
            return
        headers = [
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"connection", b"close"),
        ]
        response = h11.Response(
            status_code=TOO_LARGE, headers=headers, reason=b"Request Header Fields Too Large"
        )
        for event in (response, h11.Data(data=_TOO_LARGE_BODY), h11.EndOfMessage()):
            self.transport.write(connection.send(event) or b"")
        # A lingering close: closing at once, with the client's bytes unread, would send it a
        # reset that can destroy the 431 before the client reads it. So: end our side, drop
        # what still comes for a moment (nothing is buffered), then close.
        self._refused = True
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.loop.call_later(LINGER_S, self.transport.close)


def limited_protocol(limits: HeaderLimits) -> type[LimitedH11Protocol]:
    """The protocol class for one server's limits (uvicorn instantiates it per connection)."""
    return type("HeaderLimitedH11Protocol", (LimitedH11Protocol,), {"header_limits": limits})


class ClientFaultsWithoutTraceback(logging.Filter):
    """uvicorn logs a client's invalid UTF-8 text frame with a full traceback, once per frame
    (the connection is then closed with 1007, as it should be). A client's fault is not the
    server's error: one warning line, no traceback."""

    MESSAGES = ("Invalid UTF-8 sequence received from client",)

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and str(record.msg).startswith(self.MESSAGES):
            record.exc_info = None
            record.exc_text = None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def quiet_client_faults() -> None:
    """Install :class:`ClientFaultsWithoutTraceback` on uvicorn's logger (once)."""
    uvicorn_logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, ClientFaultsWithoutTraceback) for f in uvicorn_logger.filters):
        uvicorn_logger.addFilter(ClientFaultsWithoutTraceback())


def server_config(app: Any, settings: Settings, *, port: int, **options: Any) -> uvicorn.Config:
    """uvicorn's configuration for a service: its host, ``port``, the header limits, no
    ``Server`` header, client faults logged without tracebacks, plus ``options`` (any other
    ``uvicorn.Config`` argument)."""
    quiet_client_faults()
    limits = HeaderLimits.of(settings)
    options.setdefault("server_header", False)
    return uvicorn.Config(
        app,
        host=settings.host,
        port=port,
        http=limited_protocol(limits),
        h11_max_incomplete_event_size=limits.max_bytes,
        **options,
    )


class EmbeddedServer(uvicorn.Server):
    """A uvicorn server inside a larger service: the service, not uvicorn, owns the signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield
