"""Batched delivery on the real servers, and a slow-but-alive client caught up, not dropped."""

from __future__ import annotations

import asyncio
import json
import socket
from typing import Any

from faststream.rabbit import RabbitBroker
from pymongo.asynchronous.database import AsyncDatabase

from fragmenty_shared.settings import Settings
from fragmenty_shared.topology import Topology
from tests.unit.notifier.factories import make_event

from .conftest import (
    RunningNotifier,
    big_events,
    next_frame,
    notifier_settings,
    open_client,
    publish,
    running_notifier,
)


async def subscribe_batched(client: Any, batch_ms: int) -> None:
    await client.send(json.dumps({"action": "subscribe", "id": "b", "batch_ms": batch_ms}))
    assert await next_frame(client) == {"type": "subscribed", "id": "b"}


async def events_until(client: Any, count: int, wait_s: float = 30) -> tuple[list[str], int]:
    """Event ids received from ``events`` frames until ``count`` arrived; and how many frames."""
    ids: list[str] = []
    frames = 0
    async with asyncio.timeout(wait_s):
        while len(ids) < count:
            frame = await next_frame(client, wait_s)
            assert frame["type"] == "events", frame
            assert frame["subscription"] == "b"
            ids.extend(event["event_id"] for event in frame["events"])
            frames += 1
    return ids, frames


async def test_events_of_a_window_arrive_in_one_frame(
    notifier: RunningNotifier, broker: RabbitBroker, topology: Topology
) -> None:
    events = [make_event(f"8880005{i:04d}") for i in range(6)]
    async with open_client(notifier) as client:
        await subscribe_batched(client, 1000)
        for event in events:
            await publish(broker, topology, event)
        ids, frames = await events_until(client, len(events))
    assert ids == [event.event_id for event in events]
    assert frames < len(events)  # published well within one second: one or two windows


async def test_a_client_that_falls_behind_is_caught_up_in_fewer_frames_not_dropped(
    settings: Settings,
    broker: RabbitBroker,
    topology: Topology,
    mongo_db: AsyncDatabase[dict[str, Any]],
) -> None:
    # Room for everything that waits: the client is slow, not gone.
    roomy = notifier_settings(settings, notifier_send_buffer_bytes=64 * 1024 * 1024)
    # About 64 KiB each: twice what the kernel buffers between the two ends hold (4 MiB here).
    events = big_events("8880006", count=130)
    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 256 * 1024)
    async with running_notifier(roomy) as notifier:
        raw.connect(("127.0.0.1", notifier.port))
        async with open_client(notifier, sock=raw, max_queue=1, max_size=None) as slow:
            await subscribe_batched(slow, 10)
            for event in events:  # each in a window of its own, while the client reads nothing
                await publish(broker, topology, event)
                await asyncio.sleep(0.015)
            ids, frames = await events_until(slow, len(events), wait_s=60)
        registry = notifier.notifier.metrics.registry
        caught_up = registry.get_sample_value(
            "fragmenty_notifier_catch_up_total", {"what": "writes"}
        )
        dropped = registry.get_sample_value(
            "fragmenty_notifier_clients_dropped_total", {"reason": "slow"}
        )
    assert ids == [event.event_id for event in events]
    assert caught_up is not None
    assert caught_up >= 1
    assert frames < len(events)
    assert not dropped
