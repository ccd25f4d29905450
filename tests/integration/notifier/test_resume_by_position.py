"""Resume by position misses nothing while events arrive out of observation order (issue 17.1).

Real ingest, notifier and api over the real RabbitMQ and database. The crawler's messages are
published in an order unlike their observation times (later crawls' rows first, a census that
delists after observations stamped later than it), so event ids and ``occurred_at`` do not
follow the order events are recorded. A WebSocket client reconnects every few events with
``since=<the last seq it saw>``, and a REST client follows ``next_since``, both while the stream
is being ingested: each ends with every stored event exactly once, compared with the database.
"""

from __future__ import annotations

import asyncio
import random
from datetime import timedelta
from typing import Any

import httpx
from faststream.rabbit import RabbitBroker
from pymongo.asynchronous.database import AsyncDatabase

from fragmenty_api.main import create_app
from fragmenty_api.settings import ApiSettings
from fragmenty_shared.contracts import ListingStatus
from fragmenty_shared.settings import Settings
from fragmenty_shared.topology import Topology
from tests.integration.ingest.harness import (
    Expected,
    Message,
    ingest_settings,
    logged_events,
    publish,
    running_ingest,
    wait_until,
)
from tests.unit.ingest.factory import T0, census, observed

from .conftest import RunningNotifier, next_frame, open_client, subscribe

RECONNECT_EVERY = 40
LISTINGS = 150


def shuffled_stream() -> tuple[list[Message], int]:
    """Messages in an arrival order unlike their observation order; how many events they make."""
    rng = random.Random(17)
    slugs = [f"888{index:08d}" for index in range(LISTINGS)]
    crawl1 = [
        observed(slug, at=T0 + timedelta(seconds=i), crawl_id="c1") for i, slug in enumerate(slugs)
    ]
    # The second crawl reprices a third and misses the last ten; its rows are published in a
    # random order, and its census (delisting those ten) before some of its own rows were
    # observed: recorded order, observation order and event-id order all differ.
    later = T0 + timedelta(hours=1)
    repriced = [
        observed(slug, at=later + timedelta(seconds=rng.randrange(600)), crawl_id="c2", price="150")
        for slug in slugs[: LISTINGS // 3]
    ]
    unchanged = [
        observed(slug, at=later + timedelta(seconds=rng.randrange(600)), crawl_id="c2")
        for slug in slugs[LISTINGS // 3 : -10]
    ]
    crawl2 = repriced + unchanged
    rng.shuffle(crawl2)
    sold = [
        observed(
            slug,
            at=later + timedelta(minutes=20),
            crawl_id="c3",
            status=ListingStatus.SOLD,
            price="300",
            sold_at=later,
        )
        for slug in slugs[LISTINGS // 3 : LISTINGS // 3 + 20]
    ]
    census1 = census("c1", rows=LISTINGS, completed_at=T0 + timedelta(minutes=5))
    census2 = census(
        "c2", rows=len(crawl2), started_at=later - timedelta(minutes=1), completed_at=later
    )
    messages: list[Message] = [
        *crawl1,
        census1,
        *crawl2[: len(crawl2) // 2],
        *sold,
        *crawl2[len(crawl2) // 2 :],
        census2,
    ]
    return messages, len(Expected.of(messages).events)  # as the decision function sees them


async def follow_with_reconnects(
    notifier: RunningNotifier, expected: int, received: list[dict[str, Any]]
) -> int:
    """Read events over /ws, reconnecting every RECONNECT_EVERY with since=<last seq>."""
    since = 0
    connections = 0
    while len(received) < expected:
        connections += 1
        async with open_client(notifier, path=f"/ws?since={since}") as client:
            await subscribe(client, "all")
            this_connection = 0
            while this_connection < RECONNECT_EVERY and len(received) < expected:
                frame = await next_frame(client, 30)
                if frame["type"] != "event":
                    continue
                event = frame["event"]
                received.append(event)
                this_connection += 1
                since = max(since, event["seq"])
    return connections


async def follow_next_since(client: httpx.AsyncClient, expected: int) -> list[dict[str, Any]]:
    read: list[dict[str, Any]] = []
    since = 0
    async with asyncio.timeout(90):
        while len(read) < expected:
            page = (await client.get("/api/v1/events", params={"since": since, "limit": 7})).json()
            read += page["items"]
            since = page["next_since"]
            if not page["items"]:
                await asyncio.sleep(0.05)
    return read


async def test_websocket_and_rest_resume_by_position_get_every_stored_event_once(
    settings: Settings,
    topology: Topology,
    broker: RabbitBroker,
    mongo_db: AsyncDatabase[dict[str, Any]],
    notifier: RunningNotifier,
) -> None:
    messages, expected = shuffled_stream()
    app = create_app(ApiSettings(**{**settings.model_dump(), "live_updates": False}))
    received: list[dict[str, Any]] = []
    async with (
        running_ingest(ingest_settings(settings, ingest_batch_size=25)),
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://api.test"
        ) as rest,
    ):
        websocket_reader = asyncio.create_task(follow_with_reconnects(notifier, expected, received))
        rest_reader = asyncio.create_task(follow_next_since(rest, expected))
        for start in range(0, len(messages), 30):  # in pieces, so readers and ingest interleave
            await publish(broker, topology, messages[start : start + 30])
            await asyncio.sleep(0.05)

        async def all_stored() -> bool:
            return len(await logged_events(mongo_db)) >= expected

        await wait_until(all_stored, timeout_s=60, what="every event stored")
        async with asyncio.timeout(90):
            connections = await websocket_reader
            read = await rest_reader

    stored = await logged_events(mongo_db)
    assert len(stored) == expected
    stored_ids = [event["_id"] for event in stored]
    # Recorded order is not observation order: a cursor on event ids or times would skip.
    assert stored_ids != sorted(stored_ids)
    assert [event["event_id"] for event in received] == stored_ids  # once each, in order
    assert [event["seq"] for event in received] == [event["seq"] for event in stored]
    assert [event["event_id"] for event in read] == stored_ids
    assert connections >= expected // RECONNECT_EVERY
