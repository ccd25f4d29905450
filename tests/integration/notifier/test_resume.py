"""Resume with ?since=<seq>: stored events after it, then live, no gap, no duplicate."""

from __future__ import annotations

import asyncio
from typing import Any

from faststream.rabbit import RabbitBroker
from pymongo.asynchronous.database import AsyncDatabase

from fragmenty_shared.contracts import Asset
from fragmenty_shared.topology import Topology
from tests.support.event_log import store_events
from tests.unit.notifier.factories import make_event

from .conftest import RunningNotifier, next_frame, open_client, publish, store, subscribe


async def test_resume_replays_after_since_then_goes_live_without_gap_or_duplicate(
    notifier: RunningNotifier,
    broker: RabbitBroker,
    topology: Topology,
    mongo_db: AsyncDatabase[dict[str, Any]],
) -> None:
    # What the client saw before it went away, and what it missed: numbers and usernames mixed,
    # so the replay has to apply the client's filter too.
    before = [make_event(f"8880000{i:04d}") for i in range(3)]
    missed = [
        make_event(f"8880001{i:04d}") if i % 3 else make_event(f"user{i}", asset=Asset.USERNAME)
        for i in range(300)
    ]
    stored = await store(mongo_db, *before, *missed)
    before, missed = stored[: len(before)], stored[len(before) :]
    since = before[-1].seq

    # Live traffic while the client resumes, as ingest makes it: stored, then published. The
    # first few are also published again (an outbox relay after a crash would do that).
    live = [make_event(f"8880002{i:04d}") for i in range(40)]

    async def ingest_live() -> None:
        published = []
        for event in live:
            [numbered] = await store(mongo_db, event)
            await publish(broker, topology, numbered)
            published.append(numbered)
        for event in published[:5]:
            await publish(broker, topology, event)

    async with open_client(notifier, path=f"/ws?since={since}") as client:
        await subscribe(client, "numbers", {"assets": ["number"]})
        producer = asyncio.create_task(ingest_live())
        expected = [e.event_id for e in missed if e.asset is Asset.NUMBER] + [
            e.event_id for e in live
        ]
        received: list[str] = []
        markers = []
        async with asyncio.timeout(30):
            while len(received) < len(expected):
                frame = await next_frame(client)
                if frame["type"] == "event":
                    assert frame["subscription"] == "numbers"
                    received.append(frame["event"]["event_id"])
                elif frame["type"] == "replayed":
                    markers.append(frame)
        await producer
        # Nothing more: the re-published duplicates must not show up.
        await client.send('{"action": "ping"}')
        assert await next_frame(client) == {"type": "pong"}

    assert len(received) == len(set(received)), "an event arrived twice"
    assert received == expected  # every missed number, then every live one, in order
    assert len(markers) == 1
    assert markers[0]["count"] >= 1


async def test_resume_reads_stored_events_with_extra_fields_then_goes_live(
    notifier: RunningNotifier,
    broker: RabbitBroker,
    topology: Topology,
    mongo_db: AsyncDatabase[dict[str, Any]],
) -> None:
    [newest] = await store(mongo_db, make_event("88800009999"))
    # A writer may store events with additive fields of its own; resume reads past them.
    [extended] = await store_events(
        mongo_db, make_event("88800009998"), rollup_key="number:auction:2026-11-27"
    )
    async with open_client(notifier, path=f"/ws?since={newest.seq}") as client:
        await subscribe(client, "all")
        replayed = await next_frame(client)
        assert replayed["event"]["event_id"] == extended.event_id
        assert replayed["event"]["seq"] == extended.seq == newest.seq + 1  # type: ignore[operator]
        assert await next_frame(client) == {
            "type": "replayed",
            "count": 1,
            "last_seq": extended.seq,
            "last_event_id": extended.event_id,
        }
        [fresh] = await store(mongo_db, make_event("88800008888"))
        await publish(broker, topology, fresh)
        frame = await next_frame(client)
        assert frame["event"]["event_id"] == fresh.event_id


async def test_a_since_that_is_not_a_stored_position_is_an_error_frame(
    notifier: RunningNotifier, mongo_db: AsyncDatabase[dict[str, Any]]
) -> None:
    [newest] = await store(mongo_db, make_event("88800009999"))
    assert newest.seq is not None
    for since, message in (
        (newest.event_id, "since must be an event position"),  # an event id is not a cursor
        (str(newest.seq + 1), "ahead of the newest stored event"),
    ):
        async with open_client(notifier, path=f"/ws?since={since}") as client:
            await subscribe(client, "all")
            frame = await next_frame(client)
            assert frame["type"] == "error"
            assert message in frame["message"]
