"""Takes price events from this instance's own queue and hands them to the hub.

The queue is exclusive and auto-deleted: it vanishes with the connection, so after a broker
restart aio-pika's robust connection declares it again, re-binds it and resumes consuming. Events
published while the queue did not exist are not lost for connected clients: once the queue is
back, the stored events after the highest position (``seq``) this instance had received are
fanned out, and the hub drops any that did arrive (dedupe by event_id).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Coroutine
from typing import Any

from aio_pika.abc import AbstractIncomingMessage
from pydantic import ValidationError

from fragmenty_notifier.envelope import Envelope, published_at_from_headers
from fragmenty_notifier.event_store import EventStore
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
            on_consuming=self._on_consuming,
        )
        self._recoveries: set[asyncio.Task[None]] = set()
        self._last_delivery_at = time.time()
        # The highest event position received: where a recovery after an outage reads on.
        # Until the first delivery, the newest stored one when consuming began.
        self._last_seq: int | None = None
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

    def is_consuming(self) -> bool:
        return self._subscription.consuming.is_set()

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
        if event.seq is not None and (self._last_seq is None or event.seq > self._last_seq):
            self._last_seq = event.seq
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

    def _on_consuming(self, again: bool) -> None:
        if not again:
            self._spawn(self._note_last_stored(), "event-position")
            return
        # Back after an outage: the queue is consumed again, but what was published while it
        # did not exist never reached it.
        self._metrics.broker_reconnects.inc()
        self._spawn(self._recover(self._last_seq), "event-recovery")

    def _spawn(self, work: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(work, name=name)
        self._recoveries.add(task)
        task.add_done_callback(self._recoveries.discard)

    async def _note_last_stored(self) -> None:
        try:
            stored = await self._store.last_seq()
        except Exception as error:
            logger.warning("could not read the newest event position: %s", error)
            return
        if self._last_seq is None or stored > self._last_seq:
            self._last_seq = stored

    async def _recover(self, since: int | None) -> None:
        if since is None:
            # No position known (the database was away at start and nothing arrived since):
            # replaying from the first event would flood every client.
            logger.warning("broker connection restored; no event position known to recover from")
            return
        recovered = 0
        try:
            async for page in self._store.event_pages_after(since, limit=RECOVERY_LIMIT):
                # One fan-out per page read: each client gets one write for the page's events.
                missed = [
                    Envelope.wrap(event) for event in page if not self._hub.knows(event.event_id)
                ]
                fresh = self._hub.publish_batch(missed, source="recovery")
                recovered += fresh
                self._metrics.replayed_events.inc(fresh)
        except Exception:
            logger.exception("recovering events after a broker reconnect failed")
            return
        logger.info("broker connection restored; %d missed events recovered", recovered)
