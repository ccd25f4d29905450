"""The FastStream subscriber: validate each message, dead-letter poison, batch the rest.

Acknowledgement is manual: a valid message is acknowledged by the batch pipeline once its
effects are durable; a poison message once its copy is confirmed in the dead-letter queue.
"""

from __future__ import annotations

import logging
import time

from faststream import AckPolicy
from faststream.rabbit import RabbitBroker
from faststream.rabbit.annotations import RabbitMessage as InjectedRabbitMessage
from faststream.rabbit.message import RabbitMessage
from faststream.rabbit.subscriber.usecase import RabbitSubscriber

from fragmenty_ingest.batcher import BatchCollector
from fragmenty_ingest.metrics import IngestMetrics
from fragmenty_ingest.processor import Delivery
from fragmenty_ingest.publisher import EventPublisher
from fragmenty_ingest.validation import Poison, parse_listings_message
from fragmenty_shared.topology import Topology

logger = logging.getLogger(__name__)


async def _raw_body(message: RabbitMessage) -> bytes:
    """Hand the handler the body as sent: ingest validates it itself, poison included."""
    return message.body


def subscribe_listings(
    broker: RabbitBroker,
    topology: Topology,
    collector: BatchCollector[Delivery],
    publisher: EventPublisher,
    metrics: IngestMetrics,
) -> RabbitSubscriber:
    subscriber = broker.subscriber(
        topology.ingest_queue,
        topology.listings_exchange,
        ack_policy=AckPolicy.MANUAL,
        decoder=_raw_body,
        title="ingest.listings",
        description="ListingObserved and CensusCompleted messages from the crawler.",
    )

    @subscriber
    async def on_listings_message(body: bytes, message: InjectedRabbitMessage) -> None:
        metrics.message_arrived()
        parsed = parse_listings_message(body)
        if isinstance(parsed, Poison):
            await _dead_letter(message, parsed, publisher, metrics)
            return
        collector.put(Delivery(parsed, message.ack, time.monotonic()))

    return subscriber


async def _dead_letter(
    message: RabbitMessage, poison: Poison, publisher: EventPublisher, metrics: IngestMetrics
) -> None:
    logger.warning("dead-lettering a poison message: %s", poison.reason)
    try:
        routing_key = message.raw_message.routing_key or ""
        await publisher.dead_letter(
            message.body, poison.reason, {"x-original-routing-key": routing_key}
        )
    except Exception:
        # Not confirmed: leave it unacknowledged; a redelivery tries again, and the queue's
        # delivery limit dead-letters it in the end if the broker keeps refusing.
        logger.exception("dead-lettering failed; the message stays in the queue")
        await message.nack(requeue=True)
        return
    metrics.dead_lettered.labels(reason=poison.kind).inc()
    await message.ack()
