"""Publishing price events (with publisher confirms) and dead-lettering poison messages."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from faststream.rabbit import RabbitBroker

from fragmenty_shared.contracts import PriceEvent
from fragmenty_shared.topology import DEAD_LETTER_REASON_HEADER, Topology

PUBLISH_TIMEOUT_S = 15.0


class EventPublisher:
    """Sends events to ``fragmenty.events`` as ``<asset>.<type>``; returns once all are confirmed."""

    def __init__(self, broker: RabbitBroker, topology: Topology) -> None:
        self._broker = broker
        self._topology = topology

    async def publish_events(self, events: Sequence[PriceEvent]) -> None:
        """Raises if any event was not confirmed (the caller keeps them in the outbox)."""
        await asyncio.wait_for(
            asyncio.gather(*(self._publish_one(event) for event in events)), PUBLISH_TIMEOUT_S
        )

    async def _publish_one(self, event: PriceEvent) -> None:
        await self._broker.publish(
            event.model_dump_json().encode(),
            exchange=self._topology.events_exchange,
            routing_key=event.routing_key,
            persist=True,
            mandatory=False,  # no notifier bound yet is fine: events are also stored
            message_id=event.event_id,
            content_type="application/json",
        )

    async def dead_letter(self, body: bytes, reason: str, headers: dict[str, str]) -> None:
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
