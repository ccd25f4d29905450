"""Real servers for browser tests: the api under uvicorn, and a stand-in notifier WebSocket.

The stand-in speaks the notifier's protocol (subscribe -> subscribed, then event frames), so a
test can push an event and watch the page update without a reload.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import uvicorn
from websockets.asyncio.server import ServerConnection, serve

from fragmenty_api.main import create_app
from fragmenty_api.settings import ApiSettings
from fragmenty_shared.contracts import PriceEvent
from tests.support.private_servers import free_port


@contextlib.asynccontextmanager
async def running_api(settings: ApiSettings) -> AsyncIterator[str]:
    """The app served on a free port; yields its base URL once the snapshot is loaded."""
    port = free_port()
    app = create_app(settings)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.05)
        await app.state.api.store.current()
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


class FakeNotifier:
    """Accepts subscriptions and sends the events a test pushes to every subscription."""

    def __init__(self) -> None:
        self.port = free_port()
        self.subscriptions: list[tuple[ServerConnection, str, dict[str, Any]]] = []
        self.subscribed = asyncio.Event()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    async def _handle(self, connection: ServerConnection) -> None:
        async for raw in connection:
            frame = json.loads(raw)
            if frame.get("action") == "subscribe":
                self.subscriptions.append((connection, frame["id"], frame.get("filter", {})))
                await connection.send(json.dumps({"type": "subscribed", "id": frame["id"]}))
                self.subscribed.set()

    async def push(self, event: PriceEvent) -> None:
        for connection, subscription, _ in list(self.subscriptions):
            frame = {
                "type": "event",
                "subscription": subscription,
                "event": event.model_dump(mode="json"),
            }
            with contextlib.suppress(Exception):
                await connection.send(json.dumps(frame))

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[FakeNotifier]:
        async with serve(self._handle, "127.0.0.1", self.port):
            yield self
