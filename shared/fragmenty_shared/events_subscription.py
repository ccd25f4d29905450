"""A service's own queue of every price event, kept consumed through broker outages.

The api and each notifier instance bind an exclusive, auto-deleted queue of their own to
``fragmenty.events`` (``Topology.subscriber_queue``), so every instance sees every event. This
connects in the background, retrying, so the service serves while RabbitMQ is down; aio-pika's
robust connection declares, binds and consumes the queue again after a reconnect, and the
service hears of it through ``on_lost`` and ``on_consuming(again)`` (``again``: after a
reconnect, when events published meanwhile never reached the queue).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aio_pika.abc import AbstractIncomingMessage, AbstractQueue, AbstractRobustChannel
from faststream.rabbit import RabbitBroker, RabbitQueue

from fragmenty_shared.broker import connect_with_retries, declare_own_events_queue, make_broker
from fragmenty_shared.settings import Settings
from fragmenty_shared.topology import Topology

logger = logging.getLogger(__name__)

CANCEL_TIMEOUT_S = 2.0


class OwnEventsSubscription:
    def __init__(
        self,
        settings: Settings,
        queue: RabbitQueue,
        on_message: Callable[[AbstractIncomingMessage], Awaitable[None]],
        *,
        what: str,
        retry_s: float,
        prefetch: int = 256,
        on_lost: Callable[[], None] = lambda: None,
        on_consuming: Callable[[bool], None] = lambda again: None,
    ) -> None:
        self._settings = settings
        self._topology = Topology(settings.namespace)
        self._queue_spec = queue
        self._on_message = on_message
        self._what = what
        self._retry_s = retry_s
        self._prefetch = prefetch
        self._on_lost = on_lost
        self._on_consuming = on_consuming
        self._broker: RabbitBroker | None = None
        self._queue: AbstractQueue | None = None
        self._consumer_tag: str | None = None
        self._starter: asyncio.Task[None] | None = None
        self.consuming = asyncio.Event()  # set while the queue is consumed

    @property
    def queue_name(self) -> str:
        return self._queue_spec.name

    def start(self) -> None:
        """Connect in the background, retrying, so the service is up while RabbitMQ is not."""
        self._starter = asyncio.create_task(
            connect_with_retries(
                self._connect, self._drop_broker, what=self._what, retry_s=self._retry_s
            ),
            name=self._what,
        )

    async def stop(self) -> None:
        if self._starter is not None:
            self._starter.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._starter
        if self._queue is not None and self._consumer_tag is not None:
            # Stop deliveries first, so no message is half handled when the channel closes.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._queue.cancel(self._consumer_tag), CANCEL_TIMEOUT_S)
        await self._drop_broker()
        self.consuming.clear()

    async def check_ready(self) -> None:
        """Readiness: connected, and the queue is being consumed."""
        if self._broker is None or not self.consuming.is_set():
            raise RuntimeError(f"not consuming {self.queue_name} yet")
        if not await self._broker.ping(timeout=1.0):
            raise RuntimeError("broker connection is down")

    async def _drop_broker(self) -> None:
        if self._broker is not None:
            with contextlib.suppress(Exception):
                await self._broker.stop()
            self._broker = None

    async def _connect(self) -> None:
        broker = self._broker = make_broker(self._settings, prefetch=self._prefetch)
        await broker.connect()
        queue = await declare_own_events_queue(broker, self._topology, self._queue_spec)
        channel = queue.channel
        if isinstance(channel, AbstractRobustChannel):
            channel.close_callbacks.add(self._channel_lost)
            # Called once aio-pika has declared, bound and resumed consuming the queue again.
            channel.reopen_callbacks.add(self._channel_restored)
        self._consumer_tag = await queue.consume(self._on_message)
        self._queue = queue
        self.consuming.set()
        self._on_consuming(False)
        logger.info("%s: consuming %s", self._what, self.queue_name)

    def _channel_lost(self, *_: Any) -> None:
        self.consuming.clear()
        self._on_lost()

    def _channel_restored(self, *_: Any) -> None:
        self.consuming.set()
        self._on_consuming(True)
