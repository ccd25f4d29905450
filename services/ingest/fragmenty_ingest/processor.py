"""The batch pipeline: decide, write durably, publish, acknowledge; and the outbox relay.

For each batch, in this order (the loss-free order without transactions):

1. decide every message against the in-memory state (pure, see :mod:`decide`);
2. write the outbox entries (one document per batch, idempotent ``_id`` = its first event id);
3. write events, history, listings, census and rollups (retried until the database takes them);
4. publish the events with publisher confirms;
5. delete their outbox entries;
6. dead-letter the batch's poison messages (each confirmed by the broker);
7. acknowledge the messages: one ``multiple`` ack per channel, for the batch's last delivery.

A crash anywhere leaves either unacknowledged messages (RabbitMQ redelivers them; replays are
recognised as no change) or outbox entries (the relay redoes their effects and republishes them
at start and every few seconds). Nothing is acknowledged before it is durable.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import aiormq

from fragmenty_ingest.closes import closes_of
from fragmenty_ingest.dead_letters import Origin
from fragmenty_ingest.decide import decide_census, decide_observation
from fragmenty_ingest.metrics import IngestMetrics
from fragmenty_ingest.plan import WritePlan
from fragmenty_ingest.publisher import EventPublisher
from fragmenty_ingest.retry import until_done
from fragmenty_ingest.sightings import CrawlSightings
from fragmenty_ingest.state import ListingState, observed_details
from fragmenty_ingest.store import SEQ_RESERVATION, BatchDocuments, IngestStore
from fragmenty_ingest.validation import IngestMessage, Poison
from fragmenty_ingest.valuation import EventValuer
from fragmenty_shared.contracts import CensusCompleted, ListingObserved, PriceEvent
from fragmenty_shared.storage import event_from_document, listing_id

logger = logging.getLogger(__name__)

# Outbox documents (batches) the relay redoes and publishes at a time: a leftover outbox after
# a crash is finished in rounds about as large as normal batches, not event by event.
RELAY_DOCUMENTS = 50

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Delivery:
    """A message as it arrived: what it holds (a page's rows, one observation or a census),
    what of it is poison, and where to acknowledge it."""

    kind: str  # the message's kind, or "poison" (see ReadMessage.kind)
    messages: tuple[IngestMessage, ...]
    poison: tuple[Poison, ...]
    channel: aiormq.abc.AbstractChannel  # the AMQP channel it came on, to acknowledge it
    delivery_tag: int
    arrived_at: float  # time.monotonic()
    origin: Origin | None = None  # kept only when some of it is poison (its dead letters say it)

    @property
    def rows(self) -> int:
        """How much of a batch this delivery fills: its observations (a census counts one)."""
        return len(self.messages) or 1


class IngestProcessor:
    def __init__(
        self,
        store: IngestStore,
        publisher: EventPublisher,
        metrics: IngestMetrics,
        *,
        max_backoff_s: float,
        valuer: EventValuer | None = None,
    ) -> None:
        self._store = store
        self._valuer = valuer  # puts fair values on events; None: events carry none
        self._publisher = publisher
        self._metrics = metrics
        self._max_backoff_s = max_backoff_s
        self._states: dict[str, ListingState] = {}
        self._sightings = CrawlSightings()
        # Batches and the relay never interleave: the relay must see only finished batches.
        self._lock = asyncio.Lock()
        self._writing: asyncio.Task[None] | None = None  # the last batch's database writes
        self._finishing: asyncio.Task[None] | None = None  # the last batch's publish and acks
        self._failed: asyncio.Future[None] | None = None  # set when a batch's writes failed
        # Event positions: handed out from memory, reserved in the database ahead of use.
        self._next_seq = 1
        self._reserved_through = 0
        self._last_stored_seq = 0  # the last position written to the event log
        self._first_observed: datetime | None = None  # the earliest change recorded
        self.ready = False

    @property
    def known_listings(self) -> int:
        return len(self._states)

    async def recover(self) -> None:
        """At start: finish what a crash left in the outbox, then warm the state from the DB."""
        async with self._lock:
            self._last_stored_seq = await self._db(
                self._store.load_event_window, "reading the event log"
            )
            await self._relay(redo=True)
            self._first_observed = await self._db(
                self._store.first_observed, "reading the first observation"
            )
            self._states = await self._db(self._store.load_states, "loading listings")
        self.ready = True
        logger.info("ingest warmed: %d listings known", len(self._states))

    # --- batches ------------------------------------------------------------------------------

    async def process(self, deliveries: Sequence[Delivery]) -> None:
        """Decide a batch, and hand its writes, publishing and acks to the background.

        Three batches are in hand at once: batch N+1 is decided (CPU) while batch N is being
        written (the database) and batch N-1 published and acknowledged (the broker). A batch
        is decided against the state the batches before it leave, before those are durable:
        their writes are retried until they succeed, the batch's own writes start only after
        theirs, and nothing is acknowledged before its writes are done. Batches still write,
        publish and acknowledge in arrival order.
        """
        started = min(delivery.arrived_at for delivery in deliveries)
        self._metrics.batch_size.observe(sum(delivery.rows for delivery in deliveries))
        async with self._lock:
            plan, scratch = self._decide(deliveries)
            self._states.update(scratch)
            if self._writing is not None:
                await asyncio.shield(self._writing)  # raises what stopped the writes
            writing = self._writing = asyncio.create_task(self._write(plan, deliveries, started))
            writing.add_done_callback(self._on_written)

    async def _write(self, plan: WritePlan, deliveries: Sequence[Delivery], started: float) -> None:
        outbox_ids: list[str] = []
        if not plan.is_empty():
            plan.number_events(await self._take_positions(plan.event_count))
            outbox_ids = await self._make_durable(plan)
        previous = self._finishing
        self._finishing = asyncio.create_task(
            self._finish(previous, plan.events, outbox_ids, deliveries, started)
        )

    def _on_written(self, writing: asyncio.Task[None]) -> None:
        # Database errors are retried inside; anything else is a bug that must stop ingest
        # (its messages are redelivered to the next process), not wait for the next batch.
        if writing.cancelled() or (error := writing.exception()) is None:
            return
        failed = self._failure()
        if not failed.done():
            failed.set_exception(error)

    def _failure(self) -> asyncio.Future[None]:
        if self._failed is None:
            self._failed = asyncio.get_running_loop().create_future()
        return self._failed

    async def watch(self) -> None:
        """Returns never; raises what stopped a batch's writes (run it beside the batches)."""
        await self._failure()

    async def _finish(
        self,
        previous: asyncio.Task[None] | None,
        events: Sequence[PriceEvent],
        outbox_ids: Sequence[str],
        deliveries: Sequence[Delivery],
        started: float,
    ) -> None:
        if previous is not None:
            try:
                await asyncio.shield(previous)
            except Exception:  # not expected: a finish deals with its own failures below
                logger.exception("finishing the previous batch failed")
        if events:
            try:
                await self._publish_and_clear(events, outbox_ids)
            except Exception:
                # The batch's effects are durable and its events stay in the outbox for the
                # relay, so its messages are still acknowledged below.
                logger.exception("publishing the batch's events failed; the outbox keeps them")
        handed_back: set[int] = set()
        for delivery in deliveries:
            if delivery.poison and not await self._dead_letter(delivery):
                handed_back.add(id(delivery))
        await self._acknowledge([d for d in deliveries if id(d) not in handed_back])
        self._metrics.batch_latency.observe(time.monotonic() - started)
        logger.debug("batch of %d done: %d events", len(deliveries), len(events))

    async def drain(self) -> None:
        """Wait until every decided batch is written, published and acknowledged."""
        if self._writing is not None:
            await asyncio.shield(self._writing)
        if self._finishing is not None:
            await asyncio.shield(self._finishing)

    def _decide(self, deliveries: Sequence[Delivery]) -> tuple[WritePlan, dict[str, ListingState]]:
        plan = WritePlan()
        scratch: dict[str, ListingState] = {}
        messages = [message for delivery in deliveries for message in delivery.messages]
        observations = [m for m in messages if isinstance(m, ListingObserved)]
        # A census is judged after every observation of its batch: observations of its own crawl
        # must count as seen, and later crawls' observations are newer than its start anyway.
        censuses = [m for m in messages if isinstance(m, CensusCompleted)]
        # Counted once per batch: a labelled metric lookup per message is measurable.
        for kind, count in Counter(d.kind for d in deliveries if d.kind != "poison").items():
            self._metrics.consumed.labels(kind=kind).inc(count)
        if observations:
            self._metrics.observations.inc(len(observations))
        for observation in observations:
            self._sightings.see(observation)
            key = listing_id(observation.asset, observation.slug)
            previous = scratch.get(key) or self._states.get(key)
            decision = decide_observation(previous, observation)
            if decision.state is not None:
                scratch[key] = decision.state
            if decision.write and decision.state is not None:
                events = decision.events
                if self._valuer is not None:
                    events = self._valuer.annotate(events)
                plan.add_listing_write(
                    decision.state,
                    details=observed_details(observation),
                    is_new=previous is None,
                    events=events,
                )
        for part in censuses:
            census = self._sightings.add_census(part)
            if census is None:  # more views of this crawl are still to come
                continue
            current = {**self._states, **scratch}
            verdict = decide_census(
                current.values(), census, self._sightings.sighting(census.crawl_id)
            )
            for state, _ in verdict.delisted:
                scratch[state.listing_id] = state
            plan.add_census(census, verdict)
            self._sightings.forget(census.crawl_id)
            if verdict.views_not_trusted:
                logger.info(
                    "crawl %s: not delisting from %s (ingest did not see the whole view)",
                    census.crawl_id,
                    verdict.views_not_trusted,
                )
        if plan.event_count:
            # The market as this batch leaves it is the close of the batch's (newest) day.
            day = max(pending_day for pending_day in plan.event_days())
            plan.closes = closes_of({**self._states, **scratch}.values(), day)
        return plan, scratch

    async def _take_positions(self, count: int) -> int:
        """The first of ``count`` fresh event positions (reserving more in the database first
        when the reserved range runs out)."""
        if self._next_seq + count - 1 > self._reserved_through:
            reserve = max(count, SEQ_RESERVATION)
            self._reserved_through = await self._db(
                lambda: self._store.reserve_positions(reserve), "reserving event positions"
            )
            self._next_seq = max(self._next_seq, self._reserved_through - reserve + 1)
        first = self._next_seq
        self._next_seq += count
        return first

    async def _make_durable(self, plan: WritePlan) -> list[str]:
        """Write the outbox, then the batch's effects; returns the outbox documents' ids.

        A retry after a partly applied attempt makes the same writes: each is idempotent or
        guarded (see :mod:`fragmenty_ingest.store`).
        """
        batch = BatchDocuments.of(plan.outbox, self._last_stored_seq)
        outbox_ids = await self._db(lambda: self._store.write_outbox(batch), "writing the outbox")
        earliest = min(event.occurred_at for event in plan.events) if plan.events else None
        if earliest is not None and (
            self._first_observed is None or earliest < self._first_observed
        ):
            plan.first_observed = earliest
        await self._db(lambda: self._store.apply(plan, batch), "writing the batch")
        if plan.first_observed is not None:
            self._first_observed = plan.first_observed
        self._last_stored_seq = batch.last_seq or self._last_stored_seq
        self._metrics.listing_writes.inc(len(plan.listing_sets))
        for event in plan.events:
            self._metrics.changes.labels(type=event.type.value).inc()
        return outbox_ids

    async def _publish_and_clear(
        self, events: Sequence[PriceEvent], outbox_ids: Sequence[str]
    ) -> None:
        try:
            await self._publisher.publish_events(events)
        except Exception as error:  # the broker is away: the outbox keeps them for the relay
            logger.warning(
                "publishing %d events failed (%s); the outbox keeps them", len(events), error
            )
            self._metrics.outbox_depth.inc(len(events))
            return
        # Beside the next batch's writes: a delete by _id is one small command.
        await self._db(lambda: self._store.delete_outbox(outbox_ids), "clearing the outbox")

    async def _dead_letter(self, delivery: Delivery) -> bool:
        """Dead-letter a delivery's poison (the whole message, or each bad row of a page);
        False when the delivery was handed back to the queue instead."""
        for poison in delivery.poison:
            logger.warning("dead-lettering a poison message: %s", poison.reason)
            try:
                await self._publisher.dead_letter(
                    poison.body, poison.reason, (delivery.origin or Origin()).headers()
                )
            except Exception:
                # Not confirmed: back to the queue (before the batch's ack, which then leaves it
                # out); a redelivery tries again (its good rows are then no change, and a bad
                # row dead-lettered before this one may be dead-lettered twice), and the
                # queue's delivery limit dead-letters it in the end if the broker keeps refusing.
                logger.exception("dead-lettering failed; the message goes back to the queue")
                with contextlib.suppress(Exception):
                    await delivery.channel.basic_nack(delivery.delivery_tag, requeue=True)
                return False
            self._metrics.dead_lettered.labels(reason=poison.kind).inc()
        return True

    async def _acknowledge(self, deliveries: Sequence[Delivery]) -> None:
        """Acknowledge a finished batch: per channel, one ``multiple`` ack of its last delivery.

        That acknowledges every earlier delivery on the channel too, and every one of them is
        done with: batches finish in arrival order, and a batch's poison is dead-lettered (or
        handed back with a nack, and then left out here: acking a tag that is no longer
        outstanding would make RabbitMQ close the channel) before its ack. The ack is queued
        without waiting for the socket; an ack lost in a crash means a redelivery, which
        ingest recognises as no change.
        """
        last: dict[int, tuple[aiormq.abc.AbstractChannel, int]] = {}
        for delivery in deliveries:
            channel_key = id(delivery.channel)
            if channel_key not in last or last[channel_key][1] < delivery.delivery_tag:
                last[channel_key] = (delivery.channel, delivery.delivery_tag)
        for channel, delivery_tag in last.values():
            try:
                await channel.basic_ack(delivery_tag, multiple=True, wait=False)
            except Exception as error:
                # The channel is gone (broker restart): RabbitMQ redelivers its messages, and
                # the replays are recognised as no change.
                logger.debug("ack failed, the batch will be redelivered: %s", error)

    # --- the outbox relay ---------------------------------------------------------------------

    async def relay_forever(self, interval_s: float) -> None:
        while True:
            await asyncio.sleep(interval_s)
            try:
                async with self._lock:
                    await self.drain()  # a batch being published is not a leftover
                    await self._relay(redo=False)
            except Exception:
                logger.exception("outbox relay failed; next try in %.1f s", interval_s)

    async def _relay(self, *, redo: bool) -> None:
        """Republish every outbox entry; with ``redo``, first finish their database effects.

        At start the previous process may have died between the outbox and the other writes,
        so the effects are redone (idempotently). Later, in this process, an outbox entry only
        outlives its batch when publishing failed, after every write succeeded.
        """
        while True:
            documents = await self._db(
                lambda: self._store.pending_outbox(RELAY_DOCUMENTS), "reading the outbox"
            )
            if not documents:
                self._metrics.outbox_depth.set(0)
                return
            if redo:
                entries = await self._db(
                    functools.partial(self._store.redo, documents), "redoing outbox entries"
                )
                last = max(entry["event"]["seq"] for entry in entries)
                self._last_stored_seq = max(self._last_stored_seq, last)
            else:
                entries = [e for d in documents for e in self._store.outbox_entries(d)]
            self._metrics.outbox_depth.set(len(entries))
            events = [_event_of(entry) for entry in entries]
            try:
                await self._publisher.publish_events(events)
            except Exception as error:
                logger.warning("relay: publishing failed (%s); next try later", error)
                return
            await self._db(
                functools.partial(self._store.delete_outbox, [d["_id"] for d in documents]),
                "clearing the outbox",
            )
            self._metrics.relayed.inc(len(events))
            logger.info("relayed %d events left in the outbox", len(events))
            if len(documents) < RELAY_DOCUMENTS:
                self._metrics.outbox_depth.set(0)
                return

    async def _db(self, operation: Callable[[], Awaitable[T]], what: str) -> T:
        return await until_done(
            operation,
            what=what,
            max_backoff_s=self._max_backoff_s,
            on_retry=self._metrics.retries.labels(dependency="database").inc,
        )


def _event_of(entry: dict[str, Any]) -> PriceEvent:
    return event_from_document(entry["event"])
