"""Running ingest against real servers, feeding it, and knowing what it should have stored.

The expected final state comes from replaying the same stream through the pure decision
function (an oracle independent of the database, the broker and the batching).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import aio_pika
import httpx
from faststream.rabbit import RabbitBroker

from fragmenty_ingest.decide import CrawlSighting, decide_census, decide_observation
from fragmenty_ingest.main import run
from fragmenty_ingest.plan import WritePlan
from fragmenty_ingest.settings import IngestSettings
from fragmenty_ingest.state import ListingState
from fragmenty_shared.broker import declare_events_exchange, declare_listings_topology
from fragmenty_shared.contracts import (
    CensusCompleted,
    ListingObserved,
    ListingsObserved,
    ListingStatus,
    PriceEvent,
    pages_of,
)
from fragmenty_shared.event_log import events_in_blocks
from fragmenty_shared.listing_history import ListingHistoryReader
from fragmenty_shared.schema import Collections, history_collections
from fragmenty_shared.settings import Settings
from fragmenty_shared.storage import listing_id
from fragmenty_shared.topology import CENSUS_ROUTING_KEY, Topology, observed_routing_key
from tests.support.broker_cleanup import own_queue_name
from tests.support.private_servers import REPO_ROOT, free_port
from tests.unit.ingest.factory import T0, observed

Message = ListingObserved | CensusCompleted
WireMessage = ListingsObserved | ListingObserved | CensusCompleted


def ingest_settings(settings: Settings, **overrides: Any) -> IngestSettings:
    fields: dict[str, Any] = {
        **settings.model_dump(),
        "ingest_port": free_port(),
        "ingest_relay_interval_s": 1.0,
        "ingest_retry_max_backoff_s": 1.0,
        # These tests compare every event with the pure decision's; fair values on events are
        # proven by the unit tests and the deal e2e (a replay may value an event differently).
        "ingest_valuation_refit_seconds": 0,
    }
    fields.update(overrides)
    return IngestSettings(**fields)


async def wait_until(
    check: Callable[[], Awaitable[bool]], *, timeout_s: float, what: str, every_s: float = 0.2
) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        with contextlib.suppress(Exception):
            if await check():
                return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        await asyncio.sleep(every_s)


async def wait_ready(port: int, timeout_s: float = 60) -> None:
    async def ready() -> bool:
        async with httpx.AsyncClient() as client:
            response = await client.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
            return response.status_code == 200

    await wait_until(ready, timeout_s=timeout_s, what="ingest /readyz")


async def metric(port: int, name: str) -> float:
    """Sum of every sample of ``name`` on ingest's /metrics."""
    async with httpx.AsyncClient() as client:
        text = (await client.get(f"http://127.0.0.1:{port}/metrics", timeout=5)).text
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and not line.startswith("#"):
            head, value = line.rsplit(" ", 1)
            if head == name or head.startswith(name + "{"):
                total += float(value)
    return total


@contextlib.asynccontextmanager
async def running_ingest(settings: IngestSettings) -> AsyncIterator[asyncio.Task[None]]:
    """Ingest in this process (the real composition root), ready when entered."""
    stop = asyncio.Event()
    task = asyncio.create_task(run(settings, stop))
    try:
        ready = asyncio.create_task(wait_ready(settings.ingest_port))
        await asyncio.wait([ready, task], return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            ready.cancel()
            task.result()  # raises what stopped it
        ready.result()
        yield task
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


class IngestProcess:
    """Ingest as a separate process (``python -m fragmenty_ingest``), to be killed for real."""

    def __init__(self, settings: IngestSettings, log_path: str | None = None) -> None:
        self.settings = settings
        self.log_path = log_path
        self.process: asyncio.subprocess.Process | None = None

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        for name, value in self.settings.model_dump().items():
            env[f"FRAGMENTY_{name.upper()}"] = str(value)
        return env

    async def start(self) -> None:
        # A local log file, opened once per start: blocking for microseconds is fine in a test.
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115, ASYNC230
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "fragmenty_ingest",
            cwd=REPO_ROOT,
            env=self.env(),
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        await wait_ready(self.settings.ingest_port)

    async def kill(self) -> None:
        """SIGKILL, as a crash would: nothing is flushed, nothing is acknowledged."""
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGKILL)
            await asyncio.wait_for(self.process.wait(), 10)
        self.process = None

    async def terminate(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), 20)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        self.process = None


# Rows per page message the tests publish: small pages, so a crash lands between batches.
PAGE_ROWS = 20


async def publish(
    broker: RabbitBroker,
    topology: Topology,
    messages: Sequence[Message],
    *,
    as_pages: bool = True,
    page_rows: int = PAGE_ROWS,
) -> None:
    """Publish as the crawler does: persistent, with confirms, in order (small concurrent runs).

    Runs of observations go out as page messages (``ListingsObserved``, up to ``page_rows``
    rows, each row keeping its own time); ``as_pages=False`` sends one message per observation,
    as crawlers before schema version 2 did.
    """
    await declare_listings_topology(broker, topology)
    wire = _as_pages(messages, page_rows) if as_pages else list(messages)
    for start in range(0, len(wire), 200):
        await asyncio.gather(
            *(
                broker.publish(
                    message.model_dump_json().encode(),
                    exchange=topology.listings_exchange,
                    routing_key=_routing_key(message),
                    persist=True,
                    content_type="application/json",
                )
                for message in wire[start : start + 200]
            )
        )


def _as_pages(messages: Sequence[Message], page_rows: int) -> list[WireMessage]:
    wire: list[WireMessage] = []
    run: list[ListingObserved] = []
    for message in messages:
        if isinstance(message, ListingObserved):
            run.append(message)
            continue
        wire += pages_of(run, max_rows=page_rows)
        run = []
        wire.append(message)
    return wire + pages_of(run, max_rows=page_rows)


def _routing_key(message: WireMessage) -> str:
    if isinstance(message, CensusCompleted):
        return CENSUS_ROUTING_KEY
    return observed_routing_key(message.asset.value)


@dataclass
class EventTap:
    """A durable queue of the test's own on the events exchange: every published event lands here."""

    broker: RabbitBroker
    topology: Topology
    name: str = ""

    async def declare(self) -> None:
        await declare_events_exchange(self.broker, self.topology)
        self.name = own_queue_name(self.topology, "test-tap")
        channel = await self.broker._connection.channel()  # type: ignore[union-attr]
        try:
            queue = await channel.declare_queue(self.name, durable=True)
            await queue.bind(self.topology.events_exchange.name, routing_key="#")
        finally:
            await channel.close()

    async def drain(self, idle_s: float = 1.0) -> list[tuple[str, PriceEvent]]:
        """Every message now in the tap, as (routing key, event); consumes them."""
        received: list[tuple[str, PriceEvent]] = []
        channel = await self.broker._connection.channel()  # type: ignore[union-attr]
        try:
            queue = await channel.get_queue(self.name, ensure=False)
            while True:
                message = await queue.get(fail=False, no_ack=True)
                if message is None:
                    await asyncio.sleep(idle_s)
                    message = await queue.get(fail=False, no_ack=True)
                    if message is None:
                        return received
                received.append(
                    (message.routing_key or "", PriceEvent.model_validate_json(message.body))
                )
        finally:
            await channel.close()

    async def delete(self) -> None:
        with contextlib.suppress(Exception):
            channel = await self.broker._connection.channel()  # type: ignore[union-attr]
            await channel.queue_delete(self.name, if_unused=False, if_empty=False)
            await channel.close()


async def dead_letters(
    broker: RabbitBroker, topology: Topology
) -> list[aio_pika.abc.AbstractIncomingMessage]:
    """Everything in the dead-letter queue (acknowledged as read)."""
    found: list[aio_pika.abc.AbstractIncomingMessage] = []
    channel = await broker._connection.channel()  # type: ignore[union-attr]
    try:
        queue = await channel.get_queue(topology.dead_letter_queue_name, ensure=False)
        while (message := await queue.get(fail=False)) is not None:
            await message.ack()
            found.append(message)
    finally:
        await channel.close()
    return found


# --- the oracle --------------------------------------------------------------------------------


@dataclass
class Expected:
    """What the database must hold after a stream, computed with the pure decision function."""

    states: dict[str, ListingState] = field(default_factory=dict)
    events: dict[str, PriceEvent] = field(default_factory=dict)
    plan: WritePlan = field(default_factory=WritePlan)

    @classmethod
    def of(cls, messages: Iterable[Message]) -> Expected:
        expected = cls()
        seen: dict[str, set[str]] = {}
        by_view: dict[str, dict[tuple[str, str], set[str]]] = {}
        for message in messages:
            if isinstance(message, ListingObserved):
                key = listing_id(message.asset, message.slug)
                seen.setdefault(message.crawl_id, set()).add(key)
                views = by_view.setdefault(message.crawl_id, {})
                views.setdefault((message.asset.value, message.status.value), set()).add(
                    message.slug
                )
                previous = expected.states.get(key)
                decision = decide_observation(previous, message)
                if decision.state is not None:
                    expected.states[key] = decision.state
                    if decision.write:
                        expected.plan.add_listing_write(
                            decision.state,
                            details=None,
                            is_new=previous is None,
                            events=decision.events,
                        )
                for event in decision.events:
                    expected.events[event.event_id] = event
            else:
                sighting = CrawlSighting(
                    frozenset(seen.get(message.crawl_id, ())),
                    {v: frozenset(s) for v, s in by_view.get(message.crawl_id, {}).items()},
                )
                verdict = decide_census(expected.states.values(), message, sighting)
                for state, event in verdict.delisted:
                    expected.states[state.listing_id] = state
                    expected.events[event.event_id] = event
                expected.plan.add_census(message, verdict)
        expected.plan.number_events(1)  # positions do not change what a rollup holds
        return expected

    def rollups(self) -> dict[str, dict[str, Any]]:
        return {key: delta.totals() for key, delta in self.plan.rollup_deltas().items()}


async def assert_database_matches(database: Any, expected: Expected) -> None:
    """No listing lost or wrong, no history or event missing or extra, rollups exact, outbox empty."""
    listings = {d["_id"]: d async for d in database.listings.find({})}
    assert set(listings) == set(expected.states), "listings differ"
    for key, state in expected.states.items():
        stored = listings[key]
        assert (
            stored["status"],
            stored["price_nanoton"],
            stored["changed_at"],
            stored["delisted_at"],
        ) == (
            state.status.value,
            state.price_nanoton,
            state.changed_at,
            state.delisted_at,
        ), f"{key}: stored {stored}, expected {state}"
    history = await stored_history(database)
    history_ids = [event["_id"] for events in history.values() for event in events]
    assert sorted(history_ids) == sorted(expected.events), "price history differs"
    for key, events in history.items():
        assert all(listing_id(e["asset"], e["slug"]) == key for e in events), key
    logged = await logged_events(database)
    assert sorted(e["_id"] for e in logged) == sorted(expected.events), "events differ"
    positions = [e["seq"] for e in logged]
    assert positions == sorted(set(positions)), "event positions are not unique and growing"
    rollups = {
        d["_id"]: {k: d.get(k) for k in expected.rollups()[d["_id"]]}
        async for d in database.daily_rollups.find({})
        if d["_id"] in expected.rollups()
    }
    assert rollups == expected.rollups(), "rollups differ"
    assert await database.outbox.count_documents({}) == 0, "outbox not empty"


async def logged_events(database: Any) -> list[dict[str, Any]]:
    """Every event in the event log (archive, then window), in position order."""
    blocks = [b async for b in database[Collections.EVENT_ARCHIVE].find({}).sort("_id", 1)]
    blocks += [b async for b in database[Collections.EVENT_LOG].find({}).sort("_id", 1)]
    return events_in_blocks(blocks)


async def stored_history(database: Any) -> dict[str, list[dict[str, Any]]]:
    """Every listing's stored history (all partitions, archive included), by listing id."""
    reader = ListingHistoryReader(database)
    keys = [
        document["_id"]
        for name in history_collections()
        async for document in database[name].find({}, {"_id": 1})
    ]
    return {key: await reader.events(key) for key in keys}


def stream(listings: int, *, price_changes: int, sold: int, crawl: str = "c") -> list[Message]:
    """A market's day: listings appear, some get bids, some sell."""
    slugs = [f"888{index:08d}" for index in range(listings)]
    messages: list[Message] = [
        observed(slug, at=T0 + timedelta(milliseconds=index), price="100", crawl_id=f"{crawl}1")
        for index, slug in enumerate(slugs)
    ]
    later = T0 + timedelta(hours=1)
    messages += [
        observed(slug, at=later + timedelta(milliseconds=index), price="125", crawl_id=f"{crawl}2")
        for index, slug in enumerate(slugs[:price_changes])
    ]
    sold_at = T0 + timedelta(days=1)
    messages += [
        observed(
            slug,
            at=sold_at + timedelta(milliseconds=index),
            status=ListingStatus.SOLD,
            price="150",
            sold_at=sold_at,
            crawl_id=f"{crawl}3",
        )
        for index, slug in enumerate(slugs[-sold:] if sold else [])
    ]
    return messages


async def eventually_matches(database: Any, expected: Expected, timeout_s: float) -> None:
    """Wait until the database holds exactly the expected state; fail with the last difference."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            await assert_database_matches(database, expected)
            return
        except AssertionError:
            if time.monotonic() > deadline:
                raise
        except Exception:  # the database may still be coming back
            if time.monotonic() > deadline:
                raise
        await asyncio.sleep(0.5)


def assert_published_at_least_once(
    received: Sequence[tuple[str, PriceEvent]], expected: Expected
) -> None:
    """Every expected event arrived at least once; any duplicate is the same event (same id)."""
    by_id: dict[str, PriceEvent] = {}
    for routing_key, event in received:
        assert routing_key == event.routing_key
        if event.event_id in by_id:
            assert by_id[event.event_id] == event, "a duplicate differs from its first copy"
        by_id[event.event_id] = event
    missing = set(expected.events) - set(by_id)
    assert not missing, f"{len(missing)} events never published, e.g. {sorted(missing)[:3]}"
    assert set(by_id) == set(expected.events), "unexpected events were published"
