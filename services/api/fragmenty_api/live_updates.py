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

from aio_pika.abc import AbstractIncomingMessage, AbstractRobustChannel
from faststream.rabbit import RabbitBroker
from pydantic import ValidationError

from fragmenty_api.metrics import ApiMetrics
from fragmenty_api.settings import ApiSettings
from fragmenty_api.snapshot_store import SnapshotStore
from fragmenty_shared.broker import (
    connect_with_retries,
    declare_own_events_queue,
    make_broker,
)
from fragmenty_shared.contracts import PriceEvent
from fragmenty_shared.topology import Topology

logger = logging.getLogger(__name__)

CONNECT_RETRY_S = 5.0


class LiveUpdates:
    def __init__(self, settings: ApiSettings, store: SnapshotStore, metrics: ApiMetrics) -> None:
        self._settings = settings
        self._store = store
        self._metrics = metrics
        self._topology = Topology(settings.namespace)
        self._queue = self._topology.subscriber_queue("api")
        self._broker: RabbitBroker | None = None
        self._task: asyncio.Task[None] | None = None
        self.consuming = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.create_task(self._connect_until_done(), name="api-live-updates")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        await self._drop_broker()
        self._metrics.live_updates_connected.set(0)

    async def _connect_until_done(self) -> None:
        await connect_with_retries(
            self._connect, self._drop_broker, what="live updates", retry_s=CONNECT_RETRY_S
        )

    async def _drop_broker(self) -> None:
        if self._broker is not None:
            with contextlib.suppress(Exception):
                await self._broker.stop()
            self._broker = None

    async def _connect(self) -> None:
        broker = self._broker = make_broker(self._settings, prefetch=64)
        await broker.connect()
        queue = await declare_own_events_queue(broker, self._topology, self._queue)
        channel = queue.channel
        if isinstance(channel, AbstractRobustChannel):
            channel.close_callbacks.add(lambda *_: self._set_connected(False))
            channel.reopen_callbacks.add(lambda *_: self._set_connected(True))
        await queue.consume(self._on_message)
        self._set_connected(True)
        logger.info("applying live events from %s", self._queue.name)

    def _set_connected(self, connected: bool) -> None:
        self._metrics.live_updates_connected.set(1 if connected else 0)
        if connected:
            self.consuming.set()
        else:
            self.consuming.clear()

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        try:
            event = PriceEvent.model_validate_json(message.body)
        except ValidationError as error:
            logger.warning("dropping an unreadable event: %s", error.errors()[:3])
            await message.reject(requeue=False)
            return
        try:
            await self._store.apply_event(event)
        except Exception:
            # The next full read brings the snapshot up to date; do not loop on this event.
            logger.exception("could not apply event %s", event.event_id)
        await message.ack()
