"""Consuming ``ingest.listings``: read each message (a page's rows, poison or not) and batch it.

The queue is declared through the FastStream broker (its robust channel, prefetch and
publisher confirms), but deliveries are taken with a plain ``basic_consume`` on that channel's
AMQP channel rather than a FastStream subscriber or aio-pika's ``Queue.consume``: ingest
batches by itself, and at thousands of messages per crawl FastStream's per-message machinery
(dependency injection, middlewares, a thread hop) cost about half a millisecond each, and
aio-pika's message objects and extra task per delivery about a sixth of ingest's steady-state
CPU. After a reconnect the robust channel declares the queue again and calls back here to
consume on the new channel (``reopen_callbacks``).

Nothing is acknowledged here: every delivery, poison included, goes through the batch pipeline
in arrival order, which dead-letters poison and acknowledges a batch once its effects are
durable (see :mod:`processor`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import aiormq
from aio_pika.abc import AbstractQueue, AbstractRobustChannel, AbstractRobustQueue
from faststream.rabbit import RabbitBroker

from fragmenty_ingest.batcher import BatchCollector
from fragmenty_ingest.dead_letters import Origin
from fragmenty_ingest.metrics import IngestMetrics
from fragmenty_ingest.processor import Delivery
from fragmenty_ingest.validation import read_listings_message
from fragmenty_shared.topology import Topology

logger = logging.getLogger(__name__)


class ListingsConsumer:
    def __init__(
        self,
        broker: RabbitBroker,
        topology: Topology,
        collector: BatchCollector[Delivery],
        metrics: IngestMetrics,
    ) -> None:
        self._broker = broker
        self._topology = topology
        self._collector = collector
        self._metrics = metrics
        self._queue: AbstractQueue | None = None
        self._channel: aiormq.abc.AbstractChannel | None = None  # where the consumer is
        self._tag: str | None = None
        self._stopped = False
        # One registration at a time: a reopen during start, or two reopens in a row, must
        # not leave two consumers on one channel.
        self._registering = asyncio.Lock()
        self._resuming: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Start consuming (the topology must be declared and the broker connected)."""
        queue = self._queue = await self._broker.declare_queue(self._topology.ingest_queue)
        await self._consume()
        if isinstance(queue.channel, AbstractRobustChannel):
            queue.channel.reopen_callbacks.add(self._on_channel_reopened)

    async def stop(self) -> None:
        self._stopped = True
        for task in tuple(self._resuming):
            task.cancel()
        async with self._registering:
            channel, tag, self._tag = self._channel, self._tag, None
        if channel is not None and tag is not None:
            try:
                await channel.basic_cancel(tag)
            except Exception as error:  # the channel may already be gone
                logger.debug("cancelling the consumer failed: %s", error)

    async def check_consuming(self) -> None:
        """Readiness: a consumer is registered on an open channel."""
        if self._tag is None or self._channel is None or self._channel.is_closed:
            raise RuntimeError(f"not consuming {self._topology.ingest_queue.name}")

    async def _consume(self) -> None:
        assert self._queue is not None
        async with self._registering:
            if self._stopped:
                return
            channel = await self._queue.channel.get_underlay_channel()
            if channel is self._channel and self._tag is not None:
                return  # already consuming on this channel
            channel.on_consumer_cancel_callbacks.add(self._on_cancelled_by_broker)
            consuming = await channel.basic_consume(
                self._queue.name, self._on_delivery, no_ack=False
            )
            self._channel, self._tag = channel, consuming.consumer_tag

    async def _on_channel_reopened(self, *_: Any) -> None:
        # The robust channel has declared the queue again on a new AMQP channel: consume there.
        # Deliveries of the old channel that were not acknowledged come back on the new one.
        try:
            await self._consume()
        except Exception:  # the channel went away again: its next reopen calls back here
            logger.exception("consuming again after a reconnect failed")
            return
        logger.info("consuming %s again after a reconnect", self._topology.ingest_queue.name)

    def _on_cancelled_by_broker(self, frame: aiormq.spec.Basic.Cancel) -> None:
        # The broker ended the consumer (the queue was deleted, say): restore the queue with
        # its bindings and consume anew, rather than stay up and silently take nothing.
        if frame.consumer_tag != self._tag or self._stopped:
            return
        self._tag = None
        task = asyncio.create_task(self._resume_after_cancel(), name="consume-again")
        self._resuming.add(task)
        task.add_done_callback(self._resuming.discard)

    async def _resume_after_cancel(self) -> None:
        assert self._queue is not None
        backoff_s = 1.0
        while not self._stopped:
            try:
                # The robust queue declares itself again and re-applies the bindings made
                # through it (declare_listings_topology binds it to the listings exchange).
                if isinstance(self._queue, AbstractRobustQueue):
                    await self._queue.restore()
                await self._consume()
            except Exception as error:
                logger.warning("consuming again failed (%s); next try in %.0f s", error, backoff_s)
                await asyncio.sleep(backoff_s)
                backoff_s = min(backoff_s * 2, 30.0)
                continue
            logger.warning("the broker cancelled the consumer; consuming again")
            return

    async def _on_delivery(self, message: aiormq.abc.DeliveredMessage) -> None:
        # Every delivery reaches the collector, whatever its body: one that did not would be
        # acknowledged unprocessed by its batch's ack (read_listings_message never raises).
        self._metrics.message_arrived()
        read = read_listings_message(message.body)
        self._collector.put(
            Delivery(
                read.kind,
                read.messages,
                read.poison,
                message.channel,
                message.delivery_tag or 0,  # always set for a consumed delivery
                time.monotonic(),
                # Dead letters keep where the message was going; nothing else needs it.
                origin=Origin.of_delivery(message) if read.poison else None,
            )
        )
