"""How every service connects to RabbitMQ: one place for publisher confirms and prefetch."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from aio_pika import RobustQueue
from faststream.rabbit import Channel, RabbitBroker, RabbitQueue

from fragmenty_shared.settings import Settings
from fragmenty_shared.topology import Topology

logger = logging.getLogger(__name__)


def make_broker(settings: Settings, *, prefetch: int = 256) -> RabbitBroker:
    """A broker whose ``publish`` returns only once RabbitMQ has confirmed the message.

    Publisher confirms are on for the default channel; ``prefetch`` bounds unacknowledged
    deliveries per consumer. aio-pika's robust connection reconnects after a broker restart.
    """
    return RabbitBroker(
        settings.rabbitmq_url,
        default_channel=Channel(prefetch_count=prefetch, publisher_confirms=True),
        logger=None,
    )


async def declare_listings_topology(broker: RabbitBroker, topology: Topology) -> None:
    """Declare the listings exchange, the ingest queue and its dead-letter queue, and bind them.

    Publishers call this too, not only ingest: a message sent to an exchange with no bound queue
    is dropped, so whichever side starts first must make sure the queue exists. Declarations are
    idempotent.
    """
    listings = await broker.declare_exchange(topology.listings_exchange)
    dead_letter = await broker.declare_exchange(topology.dead_letter_exchange)
    ingest_queue = await broker.declare_queue(topology.ingest_queue)
    await ingest_queue.bind(listings, routing_key=topology.ingest_queue.routing_key)
    dead_letter_queue = await broker.declare_queue(topology.dead_letter_queue)
    await dead_letter_queue.bind(dead_letter, routing_key=topology.dead_letter_queue_name)


async def declare_events_exchange(broker: RabbitBroker, topology: Topology) -> None:
    """Declare the durable topic exchange that price events are published to."""
    await broker.declare_exchange(topology.events_exchange)


async def declare_own_events_queue(
    broker: RabbitBroker, topology: Topology, queue: RabbitQueue
) -> RobustQueue:
    """Declare the events exchange and an instance's own queue (see
    ``Topology.subscriber_queue``), bound to receive every event."""
    exchange = await broker.declare_exchange(topology.events_exchange)
    declared = await broker.declare_queue(queue)
    await declared.bind(exchange, routing_key=queue.routing_key or "#")
    return declared


async def connect_with_retries(
    connect: Callable[[], Awaitable[None]],
    discard_attempt: Callable[[], Awaitable[None]],
    *,
    what: str,
    retry_s: float,
) -> None:
    """Run ``connect`` until it succeeds, discarding each failed attempt before the next.

    Once connected, aio-pika's robust connection reconnects by itself; but the *first*
    connection is not retried by it, and a service must start even while RabbitMQ is down.
    """
    while True:
        try:
            await connect()
            return
        except Exception as error:  # cancellation is not an Exception: it still stops the loop
            logger.warning("%s: not connected yet (%r); retrying in %.0f s", what, error, retry_s)
            await discard_attempt()
            await asyncio.sleep(retry_s)
