"""Ingest against the real RabbitMQ and database: dedupe, delisting, events, poison, rollups."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import httpx
from faststream.rabbit import RabbitBroker
from pymongo.asynchronous.database import AsyncDatabase

from fragmenty_ingest.metrics import IngestMetrics
from fragmenty_ingest.valuation import EventValuer
from fragmenty_shared.contracts import EventType, pages_of
from fragmenty_shared.settings import Settings
from fragmenty_shared.topology import DEAD_LETTER_REASON_HEADER, Topology, observed_routing_key
from tests.integration.ingest.harness import (
    EventTap,
    Expected,
    assert_database_matches,
    dead_letters,
    ingest_settings,
    logged_events,
    metric,
    publish,
    running_ingest,
    stored_history,
    stream,
    wait_until,
)
from tests.support.private_servers import free_port
from tests.unit.ingest.factory import T0, census, observed

Database = AsyncDatabase[dict[str, Any]]


async def _count(database: Database, collection: str, query: dict[str, Any] | None = None) -> int:
    return await database[collection].count_documents(query or {})


async def test_the_same_census_twice_lists_once_and_writes_nothing_the_second_time(
    settings: Settings, topology: Topology, broker: RabbitBroker, mongo_db: Database
) -> None:
    slugs = [f"8880000{index:04d}" for index in range(40)]
    first = [observed(slug, crawl_id="c1", at=T0) for slug in slugs]
    second = [observed(slug, crawl_id="c2", at=T0 + timedelta(hours=1)) for slug in slugs]
    config = ingest_settings(settings)
    tap = EventTap(broker, topology)
    await tap.declare()
    try:
        async with running_ingest(config):
            await publish(broker, topology, [*first, census("c1", rows=40)])
            await wait_until(
                lambda: _has(mongo_db, "census", 1), timeout_s=30, what="the first census"
            )
            assert await metric(config.ingest_port, "fragmenty_ingest_listing_writes_total") == 40
        # A fresh instance: its memory is warmed from the database, not left over. The second
        # crawl comes as one message per observation, as crawlers before pages sent them.
        config = config.model_copy(update={"ingest_port": free_port()})
        async with running_ingest(config):
            await publish(broker, topology, [*second, census("c2", rows=40)], as_pages=False)
            await wait_until(
                lambda: _has(mongo_db, "census", 2), timeout_s=30, what="the second census"
            )
            consumed = await metric(config.ingest_port, "fragmenty_ingest_messages_consumed_total")
            assert consumed == 41
            assert await metric(config.ingest_port, "fragmenty_ingest_listing_writes_total") == 0
        events = await tap.drain()
    finally:
        await tap.delete()

    assert await _count(mongo_db, "listings") == 40
    assert await _logged(mongo_db) == 40
    assert await _logged(mongo_db, "listed") == 40
    assert sum(len(events) for events in (await stored_history(mongo_db)).values()) == 40
    assert sorted(event.slug for _, event in events) == slugs  # published once each
    assert {key for key, _ in events} == {"number.listed"}
    await assert_database_matches(mongo_db, Expected.of([*first, census("c1", rows=40)]))


async def _logged(database: Database, event_type: str | None = None) -> int:
    """Events in the event log (of one type)."""
    events = await logged_events(database)
    return sum(1 for e in events if event_type is None or e["type"] == event_type)


async def _logged_at_least(database: Database, count: int) -> bool:
    return await _logged(database) >= count


async def _has(database: Database, collection: str, count: int) -> bool:
    return await _count(database, collection) >= count


async def test_delisting_happens_only_after_a_complete_view(
    settings: Settings, topology: Topology, broker: RabbitBroker, mongo_db: Database
) -> None:
    slugs = ["88800000001", "88800000002", "88800000003"]
    day = timedelta(days=1)
    crawl1 = [observed(s, crawl_id="c1", at=T0) for s in slugs]
    census1 = census("c1", rows=3, started_at=T0, completed_at=T0 + timedelta(minutes=5))
    # The second crawl misses listing 3, but one of its pages failed: nothing is delisted.
    crawl2 = [observed(s, crawl_id="c2", at=T0 + day) for s in slugs[:2]]
    census2 = census(
        "c2",
        rows=2,
        complete=False,
        started_at=T0 + day,
        completed_at=T0 + day + timedelta(minutes=5),
    )
    # The third crawl misses it again, completely: now it is gone.
    crawl3 = [observed(s, crawl_id="c3", at=T0 + 2 * day) for s in slugs[:2]]
    census3 = census(
        "c3", rows=2, started_at=T0 + 2 * day, completed_at=T0 + 2 * day + timedelta(minutes=5)
    )
    config = ingest_settings(settings)
    async with running_ingest(config):
        await publish(broker, topology, [*crawl1, census1, *crawl2, census2])
        await wait_until(lambda: _has(mongo_db, "census", 2), timeout_s=30, what="two censuses")
        assert await _logged(mongo_db, "delisted") == 0
        gone = await mongo_db.listings.find_one({"_id": "number:88800000003"})
        assert gone is not None
        assert gone["delisted_at"] is None

        await publish(broker, topology, [*crawl3, census3])
        await wait_until(lambda: _has(mongo_db, "census", 3), timeout_s=30, what="the third census")

    delisted = [e for e in await logged_events(mongo_db) if e["type"] == EventType.DELISTED.value]
    assert [d["slug"] for d in delisted] == ["88800000003"]
    gone = await mongo_db.listings.find_one({"_id": "number:88800000003"})
    assert gone is not None
    assert gone["delisted_at"] == census3.completed_at
    recorded = await mongo_db.census.find_one({"_id": "c3"})
    assert recorded is not None
    assert recorded["delisted_count"] == 1
    await assert_database_matches(
        mongo_db, Expected.of([*crawl1, census1, *crawl2, census2, *crawl3, census3])
    )


async def test_poison_is_dead_lettered_with_its_reason_and_the_stream_goes_on(
    settings: Settings, topology: Topology, broker: RabbitBroker, mongo_db: Database
) -> None:
    config = ingest_settings(settings)
    good_before = observed("88800000001")
    good_after = observed("88800000002")
    negative = good_before.model_dump(mode="json") | {"price_ton": "-1"}
    async with running_ingest(config):
        await publish(broker, topology, [good_before])
        for body in (b"not json at all", httpx.Response(200, json=negative).content):
            await broker.publish(
                body,
                exchange=topology.listings_exchange,
                routing_key="number.observed",
                persist=True,
            )
        await publish(broker, topology, [good_after])
        await wait_until(
            lambda: _has(mongo_db, "listings", 2), timeout_s=30, what="both good listings"
        )
        await wait_until(
            lambda: _metric_at_least(config.ingest_port, "fragmenty_ingest_dead_lettered_total", 2),
            timeout_s=10,
            what="the dead-letter metric",
        )
    dead = await dead_letters(broker, topology)
    assert next(message.body for message in dead) == b"not json at all"
    reasons = [str(message.headers[DEAD_LETTER_REASON_HEADER]) for message in dead]
    assert reasons[0].startswith("not_json")
    assert reasons[1].startswith("invalid")
    assert "price_ton" in reasons[1]
    assert len(dead) == 2  # each once: dead-lettered at once, not retried


async def test_a_bad_row_of_a_page_is_dead_lettered_alone_and_the_rest_is_stored(
    settings: Settings, topology: Topology, broker: RabbitBroker, mongo_db: Database
) -> None:
    config = ingest_settings(settings)
    rows = [observed(f"8880000000{index}", crawl_id="c1") for index in range(5)]
    [page] = pages_of(rows)
    document = page.model_dump(mode="json")
    document["rows"][2]["price_ton"] = "NaN"
    async with running_ingest(config):
        await broker.publish(
            httpx.Response(200, json=document).content,
            exchange=topology.listings_exchange,
            routing_key=observed_routing_key("number"),
            persist=True,
        )
        await publish(broker, topology, [census("c1", rows=4)])
        await wait_until(lambda: _has(mongo_db, "census", 1), timeout_s=30, what="the census")
        await wait_until(
            lambda: _metric_at_least(config.ingest_port, "fragmenty_ingest_dead_lettered_total", 1),
            timeout_s=10,
            what="the dead-letter metric",
        )
        dead_metric = await metric(config.ingest_port, "fragmenty_ingest_dead_lettered_total")
    stored = sorted([d["slug"] async for d in mongo_db.listings.find({})])
    assert stored == ["88800000000", "88800000001", "88800000003", "88800000004"]
    [dead] = await dead_letters(broker, topology)
    reason = str(dead.headers[DEAD_LETTER_REASON_HEADER])
    assert reason.startswith("invalid_row: row 2 (88800000002): price_ton:")
    assert dead.headers["x-original-routing-key"] == "number.observed"
    assert dead.headers["x-original-exchange"] == topology.listings_exchange.name
    assert [row["slug"] for row in json.loads(dead.body)["rows"]] == ["88800000002"]
    assert dead_metric == 1
    good = [row for index, row in enumerate(rows) if index != 2]
    await assert_database_matches(mongo_db, Expected.of([*good, census("c1", rows=4)]))


async def _metric_at_least(port: int, name: str, value: float) -> bool:
    return await metric(port, name) >= value


async def test_changes_make_events_history_and_rollups(
    settings: Settings, topology: Topology, broker: RabbitBroker, mongo_db: Database
) -> None:
    messages = stream(60, price_changes=20, sold=10)
    config = ingest_settings(settings)
    tap = EventTap(broker, topology)
    await tap.declare()
    try:
        async with running_ingest(config):
            await publish(broker, topology, messages)
            expected = Expected.of(messages)
            await wait_until(
                lambda: _logged_at_least(mongo_db, len(expected.events)),
                timeout_s=30,
                what="every event",
            )
            await wait_until(
                lambda: _outbox_empty(mongo_db), timeout_s=10, what="the outbox to drain"
            )
            async with httpx.AsyncClient() as client:
                health = await client.get(f"http://127.0.0.1:{config.ingest_port}/healthz")
                assert health.status_code == 200
        events = await tap.drain()
    finally:
        await tap.delete()
    await assert_database_matches(mongo_db, expected)
    assert {event.event_id for _, event in events} == set(expected.events)
    assert all(key == f"{event.asset.value}.{event.type.value}" for key, event in events)
    changed = [event for _, event in events if event.type is EventType.PRICE_CHANGED]
    assert {event.change_pct for event in changed} == {25.0}
    rollup = await mongo_db.daily_rollups.find_one({"_id": "2026-11-21:number:sold"})
    assert rollup is not None
    assert (rollup["sold_count"], rollup["volume_nanoton"]) == (10, 10 * 150 * 10**9)


async def _outbox_empty(database: Database) -> bool:
    return await _count(database, "outbox") == 0


async def test_ingest_consumes_again_when_its_queue_is_deleted_under_it(
    settings: Settings, topology: Topology, broker: RabbitBroker, mongo_db: Database
) -> None:
    config = ingest_settings(settings)
    async with running_ingest(config):
        await publish(broker, topology, [observed("88800000001", crawl_id="c1", at=T0)])
        await wait_until(lambda: _has(mongo_db, "listings", 1), timeout_s=30, what="ingest")
        # An operator deletes the queue: RabbitMQ cancels ingest's consumer.
        channel = await broker._connection.channel()  # type: ignore[union-attr]
        await channel.queue_delete(topology.ingest_queue.name, if_unused=False, if_empty=False)
        await channel.close()
        # Ingest declares it again, bound to the listings exchange, and consumes from it.
        await wait_until(
            lambda: _queue_has_consumer(broker, topology.ingest_queue.name),
            timeout_s=30,
            what="a consumer on the declared-again queue",
        )
        # Straight to the exchange, declaring nothing (the harness's publish would bind the
        # queue itself): only ingest's own binding can route it.
        await broker.publish(
            observed("88800000002", crawl_id="c1", at=T0).model_dump_json().encode(),
            exchange=topology.listings_exchange,
            routing_key=observed_routing_key("number"),
            persist=True,
        )
        await wait_until(
            lambda: _has(mongo_db, "listings", 2), timeout_s=30, what="the listing sent after"
        )


async def _queue_has_consumer(broker: RabbitBroker, queue: str) -> bool:
    channel = await broker._connection.channel()  # type: ignore[union-attr]
    try:
        declared = await channel.declare_queue(queue, passive=True)
    except Exception:  # not declared again yet (a passive declare of a missing queue fails)
        return False
    finally:
        if not channel.is_closed:
            await channel.close()
    return bool(declared.declaration_result.consumer_count)


async def test_each_valuation_fit_is_counted_on_the_metrics(mongo_db: Database) -> None:
    metrics = IngestMetrics()
    valuer = EventValuer(mongo_db, metrics, refit_seconds=600)
    await valuer.refit()  # an empty market: a model of no sales, fitted all the same
    await valuer.refit()
    sample = metrics.registry.get_sample_value
    assert sample("fragmenty_ingest_valuation_refits_total") == 2
    assert sample("fragmenty_ingest_valuation_sales") == 0
