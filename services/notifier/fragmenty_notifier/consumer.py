"""Takes price events from this instance's own queue and hands them to the hub.

The queue is exclusive and auto-deleted: it vanishes with the connection, so after a broker
restart aio-pika's robust connection declares it again, re-binds it and resumes consuming. Events
published while the queue did not exist are not lost for connected clients: once the queue is
back, the stored events from shortly before the outage are fanned out again, and the hub drops
the ones that did arrive (dedupe by event_id).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from datetime import UTC, datetime, timedelta

from aio_pika.abc import AbstractIncomingMessage
from pydantic import ValidationError

from fragmenty_notifier.envelope import Envelope, published_at_from_headers
from fragmenty_notifier.event_store import EventStore, event_id_floor
from fragmenty_notifier.hub import Hub
from fragmenty_notifier.metrics import NotifierMetrics
from fragmenty_notifier.settings import NotifierSettings
from fragmenty_shared.contracts import PriceEvent
from fragmenty_shared.events_subscription import OwnEventsSubscription
from fragmenty_shared.topology import Topology

logger = logging.getLogger(__name__)

CONNECT_RETRY_S = 2.0
# Recovery reads at most this many stored events; a longer outage at a higher rate than this
# covers would need the clients to resume with ?since= themselves.
RECOVERY_LIMIT = 100_000


class EventConsumer:
    def __init__(
        self,
        settings: NotifierSettings,
        hub: Hub,
        store: EventStore,
        metrics: NotifierMetrics,
    ) -> None:
        self._settings = settings
        self._hub = hub
        self._store = store
        self._metrics = metrics
        self._subscription = OwnEventsSubscription(
            settings,
            Topology(settings.namespace).notifier_queue(settings.notifier_instance_id),
            self._on_message,
            what="events consumer",
            retry_s=CONNECT_RETRY_S,
            on_lost=self._on_channel_lost,
            on_consuming=self._on_consuming,
        )
        self._recoveries: set[asyncio.Task[None]] = set()
        self._last_delivery_at = time.time()
        self._lost_at: float | None = None
        # Events that arrived in the same turn of the event loop, fanned out together.
        self._batch: list[Envelope] = []
        self.queue_name = self._subscription.queue_name

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Connect in the background, retrying, so the web server is up while RabbitMQ is not."""
        self._subscription.start()

    async def wait_consuming(self, timeout_s: float) -> None:
        await asyncio.wait_for(self._subscription.consuming.wait(), timeout_s)

    async def stop(self) -> None:
        for task in tuple(self._recoveries):
            task.cancel()
        await self._subscription.stop()

    async def check_ready(self) -> None:
        """Readiness: connected, and this instance's queue is being consumed."""
        await self._subscription.check_ready()

    # --- deliveries --------------------------------------------------------------------------

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        self._last_delivery_at = time.time()
        try:
            event = PriceEvent.model_validate_json(message.body)
        except ValidationError as error:
            # Nothing to retry: a message this notifier cannot read never becomes readable.
            logger.warning("dropping an unreadable event: %s", error.errors()[:3])
            with contextlib.suppress(Exception):
                await message.reject(requeue=False)
            return
        self._batch.append(Envelope.wrap(event, published_at_from_headers(message.headers)))
        if len(self._batch) == 1:
            # Not a timer: the fan-out runs as soon as the deliveries already read have been
            # parsed. Idle, a batch is one event; when the notifier is behind, it is all the
            # events waiting, and each socket gets them in one write.
            asyncio.get_running_loop().call_soon(self._fan_out)
        try:
            await message.ack()
        except Exception as error:  # the channel closed (shutdown, outage): the queue goes too
            logger.debug("could not acknowledge %s: %r", event.event_id, error)

    def _fan_out(self) -> None:
        batch, self._batch = self._batch, []
        self._hub.publish_batch(batch)

    # --- recovery after a broker outage -------------------------------------------------------

    def _on_channel_lost(self) -> None:
        if self._lost_at is None:
            self._lost_at = time.time()

    def _on_consuming(self, again: bool) -> None:
        if not again:
            return
        # Back after an outage: the queue is consumed again, but what was published while it
        # did not exist never reached it.
        self._metrics.broker_reconnects.inc()
        anchor = min(self._lost_at or self._last_delivery_at, self._last_delivery_at)
        self._lost_at = None
        task = asyncio.create_task(self._recover(anchor), name="event-recovery")
        self._recoveries.add(task)
        task.add_done_callback(self._recoveries.discard)

    async def _recover(self, anchor: float) -> None:
        margin = timedelta(seconds=self._settings.notifier_recovery_margin_s)
        since = event_id_floor(datetime.fromtimestamp(anchor, UTC) - margin)
        recovered = 0
        try:
            async for event in self._store.events_after(since, limit=RECOVERY_LIMIT):
                if self._hub.knows(event.event_id):
                    continue
                if self._hub.publish(Envelope.wrap(event), source="recovery"):
                    recovered += 1
                    self._metrics.replayed_events.inc()
        except Exception:
            logger.exception("recovering events after a broker reconnect failed")
            return
        logger.info("broker connection restored; %d missed events recovered", recovered)
