"""``fragmenty-ingest dead-letters`` on the real RabbitMQ, with a real ingest on the real database:
what ingest and RabbitMQ dead-letter is listed with its reason, a replay is ingested, filters
leave the rest in order, and a replay stopped between its publish and its ack loses nothing."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from typing import Any

import aio_pika
import httpx
import pytest
from aio_pika.abc import AbstractIncomingMessage
from faststream.rabbit import RabbitBroker
from pymongo.asynchronous.database import AsyncDatabase

from fragmenty_ingest import dead_letter_queue
from fragmenty_ingest.dead_letter_queue import DeadLetterQueueError, open_dead_letter_queue
from fragmenty_ingest.dead_letters import DeadLetter
from fragmenty_ingest.dead_letters_cli import main, parse, run
from fragmenty_shared.broker import declare_listings_topology
from fragmenty_shared.contracts import ListingObserved, pages_of
from fragmenty_shared.settings import Settings
from fragmenty_shared.topology import DELIVERY_LIMIT, Topology
from tests.integration.ingest.harness import (
    ingest_settings,
    logged_events,
    metric,
    running_ingest,
    wait_until,
)
from tests.support.private_servers import REPO_ROOT, free_port
from tests.unit.ingest.factory import observed

Database = AsyncDatabase[dict[str, Any]]
ROUTING_KEY = "number.observed"


async def command(settings: Settings, *argv: str) -> dict[str, Any]:
    """The command as ``fragmenty-ingest dead-letters ARGV --json`` runs it, in this process."""
    return await run(parse([*argv, "--json"]), settings)


def page_body(*rows: ListingObserved) -> bytes:
    [page] = pages_of(list(rows))
    return page.model_dump_json().encode()


async def dead_letter_by_hand(
    broker: RabbitBroker,
    topology: Topology,
    body: bytes,
    reason: str = "unknown_schema_version: listings_observed schema_version 3",
) -> None:
    """A page in the dead-letter queue as ingest puts poison there (its headers): by default as
    if an older ingest had refused a page shape the running one understands."""
    await declare_listings_topology(broker, topology)
    await broker.publish(
        body,
        exchange=topology.dead_letter_exchange,
        routing_key=topology.dead_letter_queue_name,
        persist=True,
        headers={
            "x-fragmenty-reason": reason,
            "x-original-exchange": topology.listings_exchange.name,
            "x-original-routing-key": ROUTING_KEY,
        },
    )


async def publish_to_ingest(broker: RabbitBroker, topology: Topology, body: bytes) -> None:
    await broker.publish(
        body, exchange=topology.listings_exchange, routing_key=ROUTING_KEY, persist=True
    )


async def stored(database: Database, slug: str) -> bool:
    return await database.listings.count_documents({"slug": slug}) == 1


async def metric_at_least(port: int, name: str, value: float) -> bool:
    return await metric(port, name) >= value


async def waiting_is(settings: Settings, topology: Topology, count: int) -> bool:
    """The broker's own count of what waits in the dead-letter queue (it lags a little)."""
    connection = await aio_pika.connect(settings.rabbitmq_url)
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(topology.dead_letter_queue_name, passive=True)
        return queue.declaration_result.message_count == count


def kinds(listing: dict[str, Any]) -> list[str]:
    return [letter["kind"] for letter in listing["first"]]


async def test_dead_letters_of_a_real_ingest_are_listed_replayed_filtered_and_purged(
    settings: Settings, topology: Topology, broker: RabbitBroker, mongo_db: Database
) -> None:
    config = ingest_settings(settings)
    await dead_letter_by_hand(broker, topology, page_body(observed("88800000009")))
    bad_row = json.loads(page_body(*(observed(f"8880000000{i}") for i in range(3))))
    bad_row["rows"][1]["price_ton"] = "NaN"
    async with running_ingest(config):
        await publish_to_ingest(broker, topology, b"not json at all")
        await publish_to_ingest(broker, topology, httpx.Response(200, json=bad_row).content)
        dead_lettered = "fragmenty_ingest_dead_lettered_total"
        await wait_until(
            lambda: metric_at_least(config.ingest_port, dead_lettered, 2),
            timeout_s=30,
            what="ingest's two dead letters",
        )

        listing = await command(settings, "list")
        assert listing["queue"] == topology.dead_letter_queue_name
        assert listing["waiting"] == 3
        assert listing["by_reason"] == {
            "unknown_schema_version": 1,
            "not_json": 1,
            "invalid_row": 1,
        }
        assert listing["by_routing_key"] == {ROUTING_KEY: 3}
        assert kinds(listing) == ["unknown_schema_version", "not_json", "invalid_row"]
        row = listing["first"][2]
        assert row["reason"].startswith("invalid_row: row 1 (88800000001): price_ton:")
        assert row["exchange"] == topology.listings_exchange.name
        assert row["dead_lettered_at"] is not None
        assert row["schema"] == "listings_observed v2"
        assert row["excerpt"].startswith('{"kind": "listings_observed", "schema_version": 2')
        assert listing["first"][1]["excerpt"] == "not json at all"
        assert not await stored(mongo_db, "88800000009")

        # The page the running ingest understands: replayed, stored; the others stay, in order.
        replayed = await command(settings, "replay", "--reason", "unknown_schema_version")
        assert replayed == {
            "queue": topology.dead_letter_queue_name,
            "replayed": {"unknown_schema_version": 1},
            "left": 2,
            "over_max_replays": 0,
        }
        await wait_until(
            lambda: stored(mongo_db, "88800000009"), timeout_s=30, what="the replayed listing"
        )
        assert kinds(await command(settings, "list")) == ["not_json", "invalid_row"]

        # A replay of what still fails comes back, recognisable, and is not replayed past the
        # limit without being asked.
        await command(settings, "replay", "--reason", "invalid_row")
        await wait_until(
            lambda: metric_at_least(config.ingest_port, dead_lettered, 3),
            timeout_s=30,
            what="the bad row dead-lettered again",
        )
        listing = await command(settings, "list")
        assert kinds(listing) == ["not_json", "invalid_row"]
        assert listing["replayed_before"] == 1
        assert listing["first"][1]["replays"] == 1
        assert listing["first"][1]["routing_key"] == ROUTING_KEY
        held = await command(settings, "replay", "--reason", "invalid_row", "--max-replays", "1")
        assert held["replayed"] == {}
        assert held["over_max_replays"] == 1

        purged = await command(settings, "purge", "--reason", "not_json", "--yes")
        assert purged["purged"] == {"not_json": 1}
        assert purged["left"] == 1
        assert kinds(await command(settings, "list")) == ["invalid_row"]


async def test_what_a_replay_or_purge_leaves_keeps_its_order(
    settings: Settings, topology: Topology, broker: RabbitBroker
) -> None:
    # More than 32: RabbitMQ returns that many unacknowledged messages of a closed channel in
    # no particular order, and only one nack per message, in order, keeps it.
    for index in range(40):
        reason = "invalid: x" if index % 3 else "not_json: y"
        await dead_letter_by_hand(broker, topology, f"message {index}".encode(), reason)
    expected = [f"message {index}" for index in range(40) if index % 3]

    assert (await command(settings, "replay", "--reason", "not_json"))["left"] == len(expected)
    listing = await command(settings, "list", "--first", "40")
    assert [letter["excerpt"] for letter in listing["first"]] == expected

    await command(settings, "purge", "--reason", "invalid", "--yes")
    assert (await command(settings, "list"))["waiting"] == 0


async def test_a_pass_stops_at_max_held_says_where_and_puts_back_what_it_held_in_order(
    settings: Settings, topology: Topology, broker: RabbitBroker
) -> None:
    for index in range(7):
        await dead_letter_by_hand(broker, topology, f"message {index}".encode(), "invalid: x")
    await wait_until(lambda: waiting_is(settings, topology, 7), timeout_s=30, what="7 waiting")

    capped = await command(settings, "list", "--max", "3", "--first", "7")
    assert capped["waiting"] == 3
    assert (capped["stopped_at"], capped["of_about"]) == (3, 7)
    assert [letter["excerpt"] for letter in capped["first"]] == [f"message {i}" for i in range(3)]

    # Nothing lost (the capped pass's marker is dropped by this one), and what it held went
    # back in order. (RabbitMQ 3.10 puts it behind those still waiting: see docs/ingest.md.)
    listing = await command(settings, "list", "--first", "7")
    assert "stopped_at" not in listing
    after = [letter["excerpt"] for letter in listing["first"]]
    assert sorted(after) == [f"message {i}" for i in range(7)]
    held = [excerpt for excerpt in after if excerpt in {"message 0", "message 1", "message 2"}]
    assert held == ["message 0", "message 1", "message 2"]


async def test_what_rabbitmq_dead_lettered_after_the_delivery_limit_goes_back_where_it_came_from(
    settings: Settings, topology: Topology, broker: RabbitBroker, mongo_db: Database
) -> None:
    await declare_listings_topology(broker, topology)
    await publish_to_ingest(broker, topology, page_body(observed("88800000007")))
    await crash_on_every_delivery(settings, broker, topology)

    listing = await command(settings, "list")
    assert listing["by_reason"] == {"delivery_limit": 1}
    [letter] = listing["first"]
    assert (letter["exchange"], letter["routing_key"]) == (
        topology.listings_exchange.name,
        ROUTING_KEY,
    )
    assert topology.ingest_queue.name in letter["reason"]
    assert letter["dead_lettered_at"] is not None

    async with running_ingest(ingest_settings(settings)):
        assert (await command(settings, "replay"))["replayed"] == {"delivery_limit": 1}
        await wait_until(
            lambda: stored(mongo_db, "88800000007"), timeout_s=30, what="the replayed listing"
        )
    assert (await command(settings, "list"))["waiting"] == 0


async def crash_on_every_delivery(
    settings: Settings, broker: RabbitBroker, topology: Topology
) -> None:
    """Hand the ingest queue's message back on every delivery, as a consumer that crashes on it
    would, until RabbitMQ's delivery limit dead-letters it."""
    deliveries = 0

    async def crash(message: AbstractIncomingMessage) -> None:
        nonlocal deliveries
        deliveries += 1
        await message.nack(requeue=True)

    channel = await broker._connection.channel()  # type: ignore[union-attr]
    try:
        queue = await channel.get_queue(topology.ingest_queue.name, ensure=False)
        await queue.consume(crash)

        async def dead_lettered() -> bool:
            return bool((await command(settings, "list"))["waiting"])

        await wait_until(dead_lettered, timeout_s=30, what="RabbitMQ to dead-letter it")
    finally:
        await channel.close()
    assert deliveries == DELIVERY_LIMIT + 1


class Crash(Exception):
    pass


async def test_a_replay_stopped_between_publish_and_ack_loses_nothing_and_ingest_dedupes_it(
    settings: Settings, topology: Topology, broker: RabbitBroker, mongo_db: Database
) -> None:
    config = ingest_settings(settings)
    await dead_letter_by_hand(broker, topology, page_body(observed("88800000005")))

    async def crash(_: DeadLetter) -> None:
        raise Crash

    async with running_ingest(config):
        try:
            async with open_dead_letter_queue(settings) as queue:
                await queue.replay(reason=None, limit=None, max_replays=3, on_published=crash)
        except Crash:
            pass
        await wait_until(
            lambda: stored(mongo_db, "88800000005"), timeout_s=30, what="the replayed listing"
        )
        listing = await command(settings, "list")
        assert listing["waiting"] == 1  # published, but not acknowledged: still here
        assert listing["first"][0]["replays"] == 0

        assert (await command(settings, "replay"))["replayed"] == {"unknown_schema_version": 1}
        # Its batch is done (acknowledged after whatever it wrote), like the first copy's.
        await wait_until(
            lambda: metric_at_least(config.ingest_port, "fragmenty_ingest_batch_seconds_count", 2),
            timeout_s=30,
            what="ingest to finish the second copy",
        )
        assert (await command(settings, "list"))["waiting"] == 0
    # The second copy was the same observation again: no second event, one listing.
    assert [event["type"] for event in await logged_events(mongo_db)] == ["listed"]
    assert await mongo_db.listings.count_documents({}) == 1


def cli(settings: Settings, *argv: str) -> subprocess.CompletedProcess[str]:
    """The console command in a process of its own, as an operator runs it."""
    return subprocess.run(
        [sys.executable, "-m", "fragmenty_ingest", "dead-letters", *argv],
        cwd=REPO_ROOT,
        env={
            "PATH": "/usr/bin:/bin",
            "FRAGMENTY_RABBITMQ_URL": settings.rabbitmq_url,
            "FRAGMENTY_NAMESPACE": settings.namespace,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_the_command_says_in_one_line_when_the_queue_or_the_broker_is_not_there(
    settings: Settings, topology: Topology, broker: RabbitBroker
) -> None:
    missing = await asyncio.to_thread(cli, settings)
    assert missing.returncode == 1
    assert missing.stderr.strip().count("\n") == 0
    assert f"queue {topology.dead_letter_queue_name} does not exist" in missing.stderr

    away = settings.model_copy(
        update={"rabbitmq_url": f"amqp://guest:secret@127.0.0.1:{free_port()}/"}
    )
    unreachable = await asyncio.to_thread(cli, away, "replay")
    assert unreachable.returncode == 1
    assert unreachable.stderr.strip().count("\n") == 0
    assert "is not reachable" in unreachable.stderr
    assert "secret" not in unreachable.stderr

    await declare_listings_topology(broker, topology)
    found = await asyncio.to_thread(cli, settings, "--json")
    assert found.returncode == 0, found.stderr
    assert json.loads(found.stdout)["waiting"] == 0


async def test_purge_without_yes_is_refused_before_anything_is_touched(
    settings: Settings, topology: Topology, broker: RabbitBroker
) -> None:
    await dead_letter_by_hand(broker, topology, b"junk")
    refused = await asyncio.to_thread(cli, settings, "purge", "--reason", "unknown_schema_version")
    assert refused.returncode == 2
    assert "--yes" in refused.stderr
    assert (await command(settings, "list"))["waiting"] == 1


async def test_a_replay_that_no_queue_takes_is_an_error_and_the_message_stays(
    settings: Settings, topology: Topology, broker: RabbitBroker
) -> None:
    await dead_letter_by_hand(broker, topology, page_body(observed("88800000006")))
    await broker.declare_exchange(topology.events_exchange)  # no queue bound in this namespace
    await broker.publish(
        b"{}",
        exchange=topology.dead_letter_exchange,
        routing_key=topology.dead_letter_queue_name,
        persist=True,
        headers={
            "x-fragmenty-reason": "invalid: x",
            "x-original-exchange": topology.events_exchange.name,
            "x-original-routing-key": "number.listed",
        },
    )
    failed = await asyncio.to_thread(cli, settings, "replay")
    assert failed.returncode == 1
    assert failed.stderr.strip().count("\n") == 0, failed.stderr
    assert "nothing takes" in failed.stderr
    assert "1 replayed before it" in failed.stderr  # the one before it went out
    listing = await command(settings, "list")
    assert listing["waiting"] == 1
    assert listing["first"][0]["replays"] == 0


async def test_a_replay_that_times_out_stops_saying_how_many_went_out_and_keeps_the_rest(
    settings: Settings, topology: Topology, broker: RabbitBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    for slug in ("88800000011", "88800000012", "88800000013"):
        await dead_letter_by_hand(broker, topology, page_body(observed(slug)))

    async def no_time_for_the_next(_: DeadLetter) -> None:
        # So short that no confirm can come back in time: as a broker that does not answer.
        monkeypatch.setattr(dead_letter_queue, "PUBLISH_TIMEOUT_S", 1e-9)

    with pytest.raises(DeadLetterQueueError) as stopped:
        async with open_dead_letter_queue(settings) as queue:
            await queue.replay(
                reason=None, limit=None, max_replays=3, on_published=no_time_for_the_next
            )
    assert "did not confirm" in str(stopped.value)
    assert str(stopped.value).endswith("; 1 replayed before it")
    monkeypatch.undo()
    assert (await command(settings, "list"))["waiting"] == 2


async def test_a_timed_out_publish_is_one_line_and_exit_1(
    settings: Settings,
    topology: Topology,
    broker: RabbitBroker,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    await dead_letter_by_hand(broker, topology, b"junk")
    monkeypatch.setenv("FRAGMENTY_RABBITMQ_URL", settings.rabbitmq_url)
    monkeypatch.setenv("FRAGMENTY_NAMESPACE", settings.namespace)
    monkeypatch.setattr(dead_letter_queue, "PUBLISH_TIMEOUT_S", 1e-9)  # the pass's marker
    assert await asyncio.to_thread(main, ["replay"]) == 1
    stderr = capsys.readouterr().err
    assert stderr.strip().count("\n") == 0, stderr
    assert "did not confirm" in stderr
