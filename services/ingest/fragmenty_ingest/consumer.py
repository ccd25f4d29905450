"""Consuming ``ingest.listings``: validate each message, dead-letter poison, batch the rest.

The queue is declared through the FastStream broker (its robust channel, prefetch and
publisher confirms), but deliveries are taken with aio-pika's ``consume`` on that queue rather
than a FastStream subscriber: ingest batches by itself, and at thousands of messages per crawl
FastStream's per-message machinery (dependency injection, middlewares, a thread hop) cost
about half a millisecond each, three times ingest's own work. The robust queue re-registers
the consumer after a reconnect, as a subscriber would.

Acknowledgement is manual: a valid message is acknowledged by the batch pipeline once its
effects are durable; a poison message once its copy is confirmed in the dead-letter queue.
"""

from __future__ import annotations

import functools
import logging
import time

import aio_pika
from faststream.rabbit import RabbitBroker

from fragmenty_ingest.batcher import BatchCollector
from fragmenty_ingest.metrics import IngestMetrics
from fragmenty_ingest.processor import Delivery
from fragmenty_ingest.publisher import EventPublisher
from fragmenty_ingest.validation import Poison, parse_listings_message
from fragmenty_shared.topology import Topology

logger = logging.getLogger(__name__)


class ListingsConsumer:
    def __init__(
        self,
        broker: RabbitBroker,
        topology: Topology,
        collector: BatchCollector[Delivery],
        publisher: EventPublisher,
        metrics: IngestMetrics,
    ) -> None:
        self._broker = broker
        self._topology = topology
        self._collector = collector
        self._publisher = publisher
        self._metrics = metrics
        self._queue: aio_pika.abc.AbstractQueue | None = None
        self._tag: str | None = None

    async def start(self) -> None:
        """Start consuming (the topology must be declared and the broker connected)."""
        self._queue = await self._broker.declare_queue(self._topology.ingest_queue)
        self._tag = await self._queue.consume(self._on_message, no_ack=False)

    async def stop(self) -> None:
        if self._queue is not None and self._tag is not None:
            try:
                await self._queue.cancel(self._tag)
            except Exception as error:  # the channel may already be gone
                logger.debug("cancelling the consumer failed: %s", error)
        self._tag = None

    async def _on_message(self, message: aio_pika.abc.AbstractIncomingMessage) -> None:
        self._metrics.message_arrived()
        parsed = parse_listings_message(message.body)
        if isinstance(parsed, Poison):
            await self._dead_letter(message, parsed)
            return
        self._collector.put(
            Delivery(parsed, functools.partial(_ack_without_waiting, message), time.monotonic())
        )

    async def _dead_letter(
        self, message: aio_pika.abc.AbstractIncomingMessage, poison: Poison
    ) -> None:
        logger.warning("dead-lettering a poison message: %s", poison.reason)
        try:
            await self._publisher.dead_letter(
                message.body, poison.reason, {"x-original-routing-key": message.routing_key or ""}
            )
        except Exception:
            # Not confirmed: leave it in the queue; a redelivery tries again, and the queue's
            # delivery limit dead-letters it in the end if the broker keeps refusing.
            logger.exception("dead-lettering failed; the message stays in the queue")
            await message.nack(requeue=True)
            return
        self._metrics.dead_lettered.labels(reason=poison.kind).inc()
        await message.ack()


async def _ack_without_waiting(message: aio_pika.abc.AbstractIncomingMessage) -> None:
    """Queue the ack frame for the socket without waiting until it is written.

    An ack gets no answer from the broker anyway, so waiting only costs an event-loop round
    per message; an ack lost in a crash means a redelivery, which ingest recognises as no
    change. The ack is still only sent once the batch is durable (the caller's job).
    """
    if message.delivery_tag is None:  # a message consumed without acknowledgement
        return
    await message.channel.basic_ack(message.delivery_tag, wait=False)
