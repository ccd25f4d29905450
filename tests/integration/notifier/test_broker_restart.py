"""A RabbitMQ restart is survived, and connected clients lose no event.

Runs against a private RabbitMQ of its own (restarting the shared one would break other tests).
The notifier's exclusive queue vanishes with the broker. Events that were in it, or that were
published after the restart but before the queue was declared again, exist only in storage, and
must still reach the client, exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from faststream.rabbit import RabbitBroker
from pymongo.asynchronous.database import AsyncDatabase

from fragmenty_shared.broker import declare_events_exchange, make_broker
from fragmenty_shared.settings import Settings
from fragmenty_shared.topology import Topology
from tests.support.private_servers import private_rabbitmq
from tests.unit.notifier.factories import make_event

from .conftest import (
    next_frame,
    notifier_settings,
    open_client,
    publish,
    running_notifier,
    store,
    subscribe,
)

pytestmark = pytest.mark.slow


@contextlib.asynccontextmanager
async def publisher(settings: Settings, topology: Topology) -> AsyncIterator[RabbitBroker]:
    """Ingest's side: its own connection, which does not outlive a broker restart here."""
    broker = make_broker(settings)
    await broker.connect()
    await declare_events_exchange(broker, topology)
    try:
        yield broker
    finally:
        await broker.stop()


async def test_a_broker_restart_loses_no_event_for_connected_clients(
    settings: Settings, topology: Topology, mongo_db: AsyncDatabase[dict[str, Any]]
) -> None:
    with private_rabbitmq() as rabbit:
        private = settings.model_copy(update={"rabbitmq_url": rabbit.url})
        async with (
            running_notifier(notifier_settings(private)) as notifier,
            open_client(notifier) as client,
        ):
            await subscribe(client, "all")

            before = make_event("88800000001")
            async with publisher(private, topology) as broker:
                [before] = await store(mongo_db, before)
                await publish(broker, topology, before)
            assert (await next_frame(client))["event"]["event_id"] == before.event_id

            # Sitting in the notifier's queue when the broker went down: stored, never delivered.
            in_lost_queue = make_event("88800000002")
            [in_lost_queue] = await store(mongo_db, in_lost_queue)
            await asyncio.to_thread(rabbit.restart)

            # Published as soon as the broker is back, most likely before the notifier has
            # declared its queue again (aio-pika waits 5 s between reconnect attempts).
            right_after = make_event("88800000003")
            async with publisher(private, topology) as broker:
                [right_after] = await store(mongo_db, right_after)
                await publish(broker, topology, right_after)

            await notifier.notifier.consumer.wait_consuming(60)
            later = make_event("88800000004")
            async with publisher(private, topology) as broker:
                [later] = await store(mongo_db, later)
                await publish(broker, topology, later)

            expected = {e.event_id for e in (in_lost_queue, right_after, later)}
            received: list[str] = []
            async with asyncio.timeout(60):
                while set(received) != expected:
                    frame = await next_frame(client, 60)
                    assert frame["type"] == "event", frame
                    received.append(frame["event"]["event_id"])
            assert len(received) == len(expected), f"duplicates: {received}"

            # Nothing else is on its way: a ping is answered next.
            await client.send('{"action": "ping"}')
            assert await next_frame(client) == {"type": "pong"}
            registry = notifier.notifier.metrics.registry
            assert registry.get_sample_value("fragmenty_notifier_broker_reconnects_total") == 1.0
            recovered = registry.get_sample_value("fragmenty_notifier_recovered_events_total")
            assert recovered is not None
            assert recovered >= 1.0
