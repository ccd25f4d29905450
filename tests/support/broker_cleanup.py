"""Removing what a test or benchmark declared on the shared RabbitMQ."""

from __future__ import annotations

from faststream.rabbit import RabbitBroker

from fragmenty_shared.topology import Topology


async def delete_namespace_queues(rabbit: RabbitBroker, topology: Topology) -> None:
    """Remove the durable queues and exchanges a test declared (quorum queues outlive tests)."""
    channel = await rabbit._connection.channel()  # type: ignore[union-attr]
    try:
        for name in (
            topology.ingest_queue.name,
            topology.dead_letter_queue_name,
            topology.alerts_queue.name,
            topology.alerts_dead_letter_queue_name,
        ):
            await channel.queue_delete(name, if_unused=False, if_empty=False)
        for exchange in (
            topology.listings_exchange,
            topology.dead_letter_exchange,
            topology.events_exchange,
        ):
            await channel.exchange_delete(exchange.name)
    finally:
        await channel.close()
