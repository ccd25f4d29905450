"""Under uvicorn's other WebSocket protocol the queued outbox does the same job, more slowly."""

from __future__ import annotations

import asyncio
from typing import Any

from faststream.rabbit import RabbitBroker
from pymongo.asynchronous.database import AsyncDatabase

from fragmenty_notifier.outbox import QueuedOutbox
from fragmenty_shared.settings import Settings
from fragmenty_shared.topology import Topology

from .conftest import (
    big_events,
    frames_until,
    notifier_settings,
    publish,
    read_until_closed,
    running_notifier,
    slow_and_fast_clients,
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
    events = big_events("8880004")
    async with (
        running_notifier(legacy) as notifier,
        slow_and_fast_clients(notifier) as (slow, fast),
    ):
        assert all(isinstance(c.outbox, QueuedOutbox) for c in notifier.notifier.hub.connections)
        reading = asyncio.create_task(frames_until(fast, len(events), wait_s=60))
        for event in events:
            await publish(broker, topology, event)
        frames = await reading
        assert [f["event"]["event_id"] for f in frames] == [e.event_id for e in events]
        assert await read_until_closed(slow, 30) < len(events)
        assert slow.close_code == 1013
