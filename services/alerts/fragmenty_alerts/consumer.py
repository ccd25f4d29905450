"""The FastStream side: the alerts queue's subscriber, declared on a router.

``alerts.events`` is a durable quorum queue bound to every event (``#``): events published while
the service is down wait there. Acknowledgement is manual and comes only after the processor
has stored what the event fired; if storing fails (the database is down), the event is retried
here with a growing pause, never acknowledged half done. A message that is not a valid
``PriceEvent`` is rejected, and the queue dead-letters it into ``alerts.events.dlq``.
"""

from __future__ import annotations

import asyncio
import logging

from faststream import AckPolicy
from faststream.middlewares import ExceptionMiddleware
from faststream.rabbit import RabbitRouter
from faststream.rabbit.annotations import RabbitMessage
from pydantic import ValidationError

from fragmenty_alerts.processor import EventProcessor
from fragmenty_shared.contracts import PriceEvent
from fragmenty_shared.topology import PUBLISHED_AT_HEADER, Topology

logger = logging.getLogger(__name__)

RETRY_FIRST_S = 0.5
RETRY_MAX_S = 10.0


def published_at(message: RabbitMessage) -> float | None:
    value = (message.headers or {}).get(PUBLISHED_AT_HEADER)
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def poison_middleware() -> ExceptionMiddleware:
    """Reject what cannot be parsed: the queue dead-letters it (it would never parse)."""
    middleware = ExceptionMiddleware()

    @middleware.add_handler(ValidationError)
    async def reject_invalid(error: ValidationError, message: RabbitMessage) -> None:
        logger.warning("refused a message that is not a PriceEvent: %s", str(error)[:300])
        await message.reject()

    return middleware


def build_router(processor: EventProcessor, topology: Topology) -> RabbitRouter:
    router = RabbitRouter(middlewares=[poison_middleware()])

    @router.subscriber(
        topology.alerts_queue,
        topology.events_exchange,
        ack_policy=AckPolicy.MANUAL,
        title="alerts.events:consume",
        description="Every price event, matched against the saved alert rules.",
    )
    async def on_price_event(event: PriceEvent, message: RabbitMessage) -> None:
        """Match the event, store what it fires, then acknowledge it."""
        pause = RETRY_FIRST_S
        while True:
            try:
                await processor.process(
                    event,
                    redelivered=bool(message.raw_message.redelivered),
                    published_at=published_at(message),
                )
                break
            except Exception:  # the database or something under it; cancellation still stops us
                logger.exception(
                    "event %s: not stored yet; retrying in %.1f s", event.event_id, pause
                )
                await asyncio.sleep(pause)
                pause = min(pause * 2, RETRY_MAX_S)
        await message.ack()

    return router
