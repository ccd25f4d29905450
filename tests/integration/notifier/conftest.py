"""A notifier running in the test's event loop, on a free port, against the real servers."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from faststream.rabbit import RabbitBroker
from pymongo.asynchronous.database import AsyncDatabase
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from fragmenty_notifier.main import Notifier, build_notifier, build_server
from fragmenty_notifier.server import NotifierServer
from fragmenty_notifier.settings import NotifierSettings
from fragmenty_shared.contracts import PriceEvent
from fragmenty_shared.settings import Settings
from fragmenty_shared.topology import PUBLISHED_AT_HEADER, Topology
from tests.integration.api.browser import browser, chromium_path
from tests.support.event_log import store_events
from tests.support.private_servers import free_port
from tests.unit.notifier.factories import make_event

ALLOWED_ORIGIN = "https://fragmenty.example"

# The api tests' headless Chromium, for the original front end's page (test_original_page.py).
__all__ = ["browser", "chromium_path"]


@dataclass
class RunningNotifier:
    notifier: Notifier
    server: NotifierServer
    port: int

    def url(self, path: str = "/ws") -> str:
        return f"ws://127.0.0.1:{self.port}{path}"

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def notifier_settings(settings: Settings, **overrides: Any) -> NotifierSettings:
    """This test's namespace and database, a free port, and test-friendly limits."""
    values: dict[str, Any] = {
        "namespace": settings.namespace,
        "mongodb_database": settings.mongodb_database,
        "rabbitmq_url": settings.rabbitmq_url,
        "mongodb_url": settings.mongodb_url,
        "notifier_port": free_port(),
        "notifier_allowed_origins": [ALLOWED_ORIGIN],
        **overrides,
    }
    return NotifierSettings(**values)


@contextlib.asynccontextmanager
async def running_notifier(settings: NotifierSettings) -> AsyncIterator[RunningNotifier]:
    notifier = build_notifier(settings)
    server = build_server(notifier, handle_signals=False)
    serving = asyncio.create_task(server.serve())
    deadline = time.monotonic() + 15
    while not server.started:
        if serving.done():
            serving.result()
            raise RuntimeError("the notifier stopped during startup")
        if time.monotonic() > deadline:
            raise TimeoutError("the notifier did not start")
        await asyncio.sleep(0.02)
    await notifier.consumer.wait_consuming(15)
    try:
        yield RunningNotifier(notifier, server, settings.notifier_port)
    finally:
        server.should_exit = True
        await asyncio.wait_for(serving, 20)


@pytest.fixture
async def notifier(
    settings: Settings, broker: RabbitBroker, mongo_db: AsyncDatabase[dict[str, Any]]
) -> AsyncIterator[RunningNotifier]:
    """The notifier with default limits (the broker and database fixtures clean up after)."""
    async with running_notifier(notifier_settings(settings)) as running:
        yield running


async def publish(
    broker: RabbitBroker, topology: Topology, event: PriceEvent, *, stamp: bool = True
) -> None:
    """Publish as ingest does: the event as JSON, routed by ``<asset>.<type>``."""
    headers: dict[str, Any] | None = {PUBLISHED_AT_HEADER: repr(time.time())} if stamp else None
    await broker.publish(
        event.model_dump_json(),
        exchange=topology.events_exchange,
        routing_key=event.routing_key,
        headers=headers,
        persist=True,
        content_type="application/json",
    )


async def store(database: AsyncDatabase[dict[str, Any]], *events: PriceEvent) -> list[PriceEvent]:
    """Store events as ingest does (the event log); returns them with their positions."""
    return await store_events(database, *events)


async def next_frame(websocket: ClientConnection, wait_s: float = 10.0) -> dict[str, Any]:
    raw = await asyncio.wait_for(websocket.recv(), wait_s)
    frame = json.loads(raw)
    assert isinstance(frame, dict | list)
    return frame  # type: ignore[return-value]


async def frames_until(
    websocket: ClientConnection, count: int, *, kind: str = "event", wait_s: float = 15.0
) -> list[dict[str, Any]]:
    """The next ``count`` frames of one type (others are skipped)."""
    found: list[dict[str, Any]] = []
    async with asyncio.timeout(wait_s):
        while len(found) < count:
            frame = await next_frame(websocket, wait_s)
            if frame.get("type") == kind:
                found.append(frame)
    return found


async def subscribe(
    websocket: ClientConnection, subscription_id: str, filter: dict[str, Any] | None = None
) -> None:
    await websocket.send(
        json.dumps({"action": "subscribe", "id": subscription_id, "filter": filter or {}})
    )
    answer = await next_frame(websocket)
    assert answer == {"type": "subscribed", "id": subscription_id}, answer


def open_client(running: RunningNotifier, path: str = "/ws", **options: Any) -> connect:
    options.setdefault("origin", ALLOWED_ORIGIN)
    return connect(running.url(path), **options)


async def read_until_closed(websocket: ClientConnection, wait_s: float = 15.0) -> int:
    """Read until the server closes the connection; how many messages came before the close."""
    received = 0
    async with asyncio.timeout(wait_s):
        try:
            while True:
                await websocket.recv()
                received += 1
        except ConnectionClosed:
            return received


def big_events(slug_prefix: str, count: int = 200) -> list[PriceEvent]:
    """Events of about 64 KiB: a client that does not read fills its socket buffers in dozens."""
    return [
        make_event(f"{slug_prefix}{i:04d}", tags=[f"{i}-{'x' * 2000}"] * 32) for i in range(count)
    ]


@contextlib.asynccontextmanager
async def slow_and_fast_clients(
    running: RunningNotifier,
) -> AsyncIterator[tuple[ClientConnection, ClientConnection]]:
    """Two clients subscribed to everything: one that never reads after subscribing, one that
    reads as fast as it can."""
    # The slow one has a fixed receive buffer. (Not a tiny one: a window below the loopback MSS
    # stalls TCP in zero-window probes.)
    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 256 * 1024)
    raw.connect(("127.0.0.1", running.port))
    async with (
        open_client(running, sock=raw, max_queue=1, max_size=None) as slow,
        open_client(running, max_size=None) as fast,
    ):
        await subscribe(slow, "all")
        await subscribe(fast, "all")
        yield slow, fast
