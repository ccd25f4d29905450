"""The declared topology on the real RabbitMQ: routing, and dead-lettering by delivery limit."""

import asyncio

import aio_pika
import pytest
from faststream.rabbit import RabbitBroker

from fragmenty_shared.broker import declare_listings_topology
from fragmenty_shared.settings import Settings
from fragmenty_shared.topology import DELIVERY_LIMIT, Topology, observed_routing_key
from tests.support.broker_cleanup import NamespaceSweeper


async def test_observations_reach_the_ingest_queue_and_redeliveries_end_in_the_dlq(
    broker: RabbitBroker, topology: Topology
) -> None:
    await declare_listings_topology(broker, topology)
    await declare_listings_topology(broker, topology)  # idempotent: a second declare is harmless

    await broker.publish(
        b'{"not": "a listing"}',
        exchange=topology.listings_exchange,
        routing_key=observed_routing_key("number"),
        persist=True,
    )

    channel = await broker._connection.channel()  # type: ignore[union-attr]
    try:
        queue = await channel.get_queue(topology.ingest_queue.name, ensure=False)
        # A consumer that keeps failing: reject with requeue, as a crash would, past the limit.
        # (basic.get is refused on single-active-consumer queues, so this consumes.)
        deliveries = 0
        async with queue.iterator() as incoming:
            async for message in incoming:
                assert message.body == b'{"not": "a listing"}'
                deliveries += 1
                await message.nack(requeue=True)
                if deliveries == DELIVERY_LIMIT + 1:
                    break
        dead_letter_queue = await channel.get_queue(topology.dead_letter_queue_name, ensure=False)
        dead = await _get(dead_letter_queue)
        assert dead.body == b'{"not": "a listing"}'
        assert dead.headers["x-first-death-reason"] == "delivery_limit"
        await dead.ack()
        declared = await channel.declare_queue(topology.ingest_queue.name, passive=True)
        assert declared.declaration_result.message_count == 0
    finally:
        await channel.close()


async def _get(queue: aio_pika.abc.AbstractQueue) -> aio_pika.abc.AbstractIncomingMessage:
    for _ in range(50):
        message = await queue.get(fail=False)
        if message is not None:
            return message
        await asyncio.sleep(0.1)
    raise AssertionError(f"no message arrived on {queue.name}")


async def test_a_namespace_sweep_deletes_every_durable_queue_and_exchange(
    broker: RabbitBroker,
    settings: Settings,
    topology: Topology,
    namespace_sweeper: NamespaceSweeper,
) -> None:
    """What the autouse fixture does after every integration test (tests/conftest.py)."""
    await declare_listings_topology(broker, topology)
    await broker.declare_exchange(topology.events_exchange)
    await broker.declare_queue(topology.alerts_queue)
    await broker.declare_queue(topology.alerts_dead_letter_queue)

    await asyncio.to_thread(namespace_sweeper.sweep, topology)

    connection = await aio_pika.connect(settings.rabbitmq_url)
    try:
        for name in topology.durable_queue_names():
            channel = await connection.channel()
            with pytest.raises(aio_pika.exceptions.ChannelNotFoundEntity):
                await channel.declare_queue(name, passive=True)
        for name in topology.exchange_names():
            channel = await connection.channel()
            with pytest.raises(aio_pika.exceptions.ChannelNotFoundEntity):
                await channel.declare_exchange(name, passive=True)
    finally:
        await connection.close()


def test_a_sweep_without_a_reachable_rabbitmq_warns_instead_of_failing_the_test() -> None:
    sweeper = NamespaceSweeper("amqp://guest:guest@127.0.0.1:9/")  # nothing listens on port 9
    try:
        with pytest.warns(UserWarning, match="unreachable: namespace tgone not swept"):
            sweeper.sweep(Topology("tgone"))
    finally:
        sweeper.close()
