"""Consumes price events from RabbitMQ and applies each to the market snapshot.

The api binds an exclusive, auto-deleted queue of its own to ``fragmenty.events`` (as each
notifier instance does), so every api instance sees every event. The api serves without the
broker: until it connects (retrying in the background) and after it loses the connection, the
periodic full read keeps the snapshot eventually current.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aio_pika.abc import AbstractIncomingMessage
from pydantic import ValidationError

from fragmenty_api.metrics import ApiMetrics
from fragmenty_api.settings import ApiSettings
from fragmenty_api.snapshot_store import SnapshotStore
from fragmenty_shared.contracts import PriceEvent
from fragmenty_shared.events_subscription import OwnEventsSubscription
from fragmenty_shared.topology import Topology

logger = logging.getLogger(__name__)

CONNECT_RETRY_S = 5.0
# Events applied together at most (the subscription's prefetch bounds what can wait).
MAX_BATCH = 64


class LiveUpdates:
    def __init__(self, settings: ApiSettings, store: SnapshotStore, metrics: ApiMetrics) -> None:
        self._store = store
        self._metrics = metrics
        self._subscription = OwnEventsSubscription(
            settings,
            Topology(settings.namespace).subscriber_queue("api"),
            self._on_message,
            what="api live updates",
            retry_s=CONNECT_RETRY_S,
            prefetch=64,
            on_lost=lambda: self._metrics.live_updates_connected.set(0),
            on_consuming=lambda again: self._metrics.live_updates_connected.set(1),
        )
        self.consuming = self._subscription.consuming
        self._waiting: list[tuple[PriceEvent, AbstractIncomingMessage]] = []
        self._applying: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._subscription.start()

    async def stop(self) -> None:
        await self._subscription.stop()
        if self._applying is not None:
            self._applying.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._applying
        self._metrics.live_updates_connected.set(0)

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        try:
            event = PriceEvent.model_validate_json(message.body)
        except ValidationError as error:
            logger.warning("dropping an unreadable event: %s", error.errors()[:3])
            await message.reject(requeue=False)
            return
        self._waiting.append((event, message))
        if self._applying is None or self._applying.done():
            self._applying = asyncio.create_task(self._apply_waiting(), name="api-live-updates")

    async def _apply_waiting(self) -> None:
        """Apply what arrived, a batch at a time: the events that came in while the previous
        batch was applied go together (one read of their listings), then are acknowledged."""
        while self._waiting:
            batch, self._waiting = self._waiting[:MAX_BATCH], self._waiting[MAX_BATCH:]
            try:
                await self._store.apply_events([event for event, _ in batch])
            except Exception:
                # The next full read brings the snapshot up to date; do not loop on these.
                logger.exception("could not apply %d events", len(batch))
            for _, message in batch:
                try:
                    await message.ack()
                except Exception as error:  # the channel closed: the queue went with it
                    logger.debug("could not acknowledge an event: %r", error)
