"""Under uvicorn's other WebSocket protocol the queued outbox does the same job, more slowly."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from faststream.rabbit import RabbitBroker
from pymongo.asynchronous.database import AsyncDatabase

from fragmenty_notifier.outbox import QueuedOutbox
from fragmenty_shared.settings import Settings
from fragmenty_shared.topology import Topology
from tests.unit.notifier.factories import make_event

from .conftest import (
    frames_until,
    notifier_settings,
    open_client,
    publish,
    read_until_closed,
    running_notifier,
    subscribe,
)


async def test_events_flow_and_a_slow_client_is_dropped_through_the_queued_outbox(
    settings: Settings,
    broker: RabbitBroker,
    topology: Topology,
    mongo_db: AsyncDatabase[dict[str, Any]],
) -> None:
    legacy = notifier_settings(
        settings, notifier_ws_protocol="websockets", notifier_send_buffer_bytes=512 * 1024
    )
    events = [make_event(f"8880004{i:04d}", tags=[f"{i}-{'x' * 2000}"] * 32) for i in range(200)]
    async with running_notifier(legacy) as notifier:
        raw = socket.socket()
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 256 * 1024)
        raw.connect(("127.0.0.1", notifier.port))
        async with (
            open_client(notifier, sock=raw, max_queue=1, max_size=None) as slow,
            open_client(notifier, max_size=None) as fast,
        ):
            await subscribe(slow, "all")
            await subscribe(fast, "all")
            assert all(
                isinstance(c.outbox, QueuedOutbox) for c in notifier.notifier.hub.connections
            )
            reading = asyncio.create_task(frames_until(fast, len(events), wait_s=60))
            for event in events:
                await publish(broker, topology, event)
            frames = await reading
            assert [f["event"]["event_id"] for f in frames] == [e.event_id for e in events]
            assert await read_until_closed(slow, 30) < len(events)
            assert slow.close_code == 1013
