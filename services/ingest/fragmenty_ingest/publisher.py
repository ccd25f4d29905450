"""Publishing price events (with publisher confirms) and dead-lettering poison messages."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

import aio_pika
import aiormq
from faststream.rabbit import RabbitBroker

from fragmenty_ingest.confirmed_burst import Publication, publish_burst
from fragmenty_shared.contracts import PriceEvent
from fragmenty_shared.topology import DEAD_LETTER_REASON_HEADER, PUBLISHED_AT_HEADER, Topology

PUBLISH_TIMEOUT_S = 15.0


class EventPublisher:
    """Sends events to ``fragmenty.events`` as ``<asset>.<type>``; returns once all are confirmed."""

    def __init__(self, broker: RabbitBroker, topology: Topology) -> None:
        self._broker = broker
        self._topology = topology
        self._events_exchange: aio_pika.RobustExchange | None = None

    async def bind(self) -> None:
        """Declare the events exchange and keep its handle (call once connected).

        Events go out through aio-pika's exchange on the broker's confirming channel rather
        than ``broker.publish``: at thousands of events per crawl FastStream's per-message
        publish machinery was a third of ingest's CPU time, and this path needs none of it.
        The exchange is robust: it is redeclared on the new channel after a reconnect.
        """
        self._events_exchange = await self._broker.declare_exchange(self._topology.events_exchange)

    async def publish_events(self, events: Sequence[PriceEvent]) -> None:
        """Raises if any event was not confirmed (the caller keeps them in the outbox).

        The events go out on the exchange's current underlying channel as one burst (see
        :mod:`fragmenty_ingest.confirmed_burst`: one write for the batch instead of a task,
        a lock and a queued frame per event), and then every confirm is awaited.
        """
        exchange = self._events_exchange
        if exchange is None:
            raise RuntimeError("EventPublisher.bind() was not called")
        if exchange.channel.is_closed:
            raise aiormq.exceptions.ChannelInvalidStateError("the events channel is closed")
        channel = await exchange.channel.get_underlay_channel()
        if not isinstance(channel, aiormq.Channel) or not channel.publisher_confirms:
            raise RuntimeError("the events channel must be an aiormq channel with confirms")
        # The notifier measures its fan-out latency from this moment.
        headers: aio_pika.abc.HeadersType = {PUBLISHED_AT_HEADER: repr(time.time())}
        publications = [
            Publication(
                exchange=exchange.name,
                routing_key=event.routing_key,
                properties=aiormq.spec.Basic.Properties(
                    content_type="application/json",
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT.value,
                    message_id=event.event_id,
                    headers=headers,
                ),
                body=event.model_dump_json().encode(),
            )
            for event in events
        ]
        confirmations = await publish_burst(channel, publications)
        await asyncio.wait_for(asyncio.gather(*confirmations), PUBLISH_TIMEOUT_S)

    async def dead_letter(self, body: bytes, reason: str, headers: dict[str, str | int]) -> None:
        """Put the original body in the dead-letter queue with why; returns once confirmed."""
        await asyncio.wait_for(
            self._broker.publish(
                body,
                exchange=self._topology.dead_letter_exchange,
                routing_key=self._topology.dead_letter_queue_name,
                persist=True,
                headers={**headers, DEAD_LETTER_REASON_HEADER: reason},
            ),
            PUBLISH_TIMEOUT_S,
        )
