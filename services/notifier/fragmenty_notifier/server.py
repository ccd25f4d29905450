"""uvicorn, with a graceful goodbye: clients get close code 1001 before the server stops.

uvicorn's own shutdown fails open sockets with 1012; the notifier first closes them itself with
1001 (going away), so clients know to reconnect elsewhere and resume with ``?since=``.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator

import uvicorn

from fragmenty_notifier.hub import Hub

GOODBYE_TIMEOUT_S = 5.0


class NotifierServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, hub: Hub, *, handle_signals: bool = True) -> None:
        super().__init__(config)
        self._hub = hub
        self._handle_signals = handle_signals

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        await self._hub.close_all(GOODBYE_TIMEOUT_S)
        await super().shutdown(sockets)

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if self._handle_signals:
            with super().capture_signals():
                yield
        else:  # embedded (tests, benchmarks): whoever runs the server owns the signals
            yield
