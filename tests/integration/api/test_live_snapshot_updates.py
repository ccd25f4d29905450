"""A price event on the real RabbitMQ updates what the api serves, without a full reload."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal
from typing import Any

from faststream.rabbit import RabbitBroker
from prometheus_client import CollectorRegistry
from pymongo.asynchronous.database import AsyncDatabase

from fragmenty_api.metrics import ApiMetrics
from fragmenty_api.snapshot_store import SnapshotStore
from fragmenty_shared.broker import declare_events_exchange
from fragmenty_shared.contracts import Asset, EventType, ListingStatus, PriceEvent
from fragmenty_shared.money import to_nanoton
from fragmenty_shared.settings import Settings
from fragmenty_shared.storage import make_mongo_client
from fragmenty_shared.topology import Topology
from tests.integration.api.conftest import NOW, ClientFactory
from tests.integration.api.market_seed import SeedListing
from tests.support.command_counts import FindCounter
from tests.support.event_log import store_events
from tests.unit.notifier.factories import make_event


async def publish(broker: RabbitBroker, topology: Topology, event: PriceEvent) -> None:
    await broker.publish(
        event.model_dump_json().encode(),
        exchange=topology.events_exchange,
        routing_key=event.routing_key,
        content_type="application/json",
    )


async def eventually(check: Any, timeout_s: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        if await check():
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("the api did not pick up the event")
        await asyncio.sleep(0.1)


async def test_an_event_updates_listings_history_and_feed_live(
    market: list[SeedListing],
    make_client: ClientFactory,
    mongo_db: AsyncDatabase[dict[str, Any]],
    broker: RabbitBroker,
    topology: Topology,
) -> None:
    await declare_events_exchange(broker, topology)
    # Ingest's order: the listing, its history and the event log are written before the event
    # is published.
    cheaper = SeedListing(
        Asset.NUMBER,
        "88800000999",
        ListingStatus.AUCTION,
        Decimal("5"),
        NOW - timedelta(days=2),
        ends_at=NOW + timedelta(days=3),
        changes=[(NOW, EventType.PRICE_CHANGED, ListingStatus.AUCTION, Decimal("5"))],
    )
    newcomer = SeedListing(
        Asset.USERNAME, "fresh", ListingStatus.SALE, Decimal("7"), NOW, ends_at=None
    )
    # A full reload would take this long: the test would time out if it depended on one.
    async with make_client(live_updates=True, snapshot_refresh_seconds=3600) as client:
        app = client._transport.app  # type: ignore[attr-defined]
        await asyncio.wait_for(app.state.live_updates.consuming.wait(), 10)
        await mongo_db["listings"].replace_one({"_id": cheaper.id}, cheaper.listing_document())
        await mongo_db["listings"].insert_one(newcomer.listing_document())
        stored = await store_events(
            mongo_db, cheaper.events()[0], newcomer.events()[0], with_history=True
        )
        await publish(broker, topology, stored[0])
        await publish(broker, topology, stored[1])
        await publish(broker, topology, stored[1])  # a duplicate changes nothing

        async def both_applied() -> bool:
            first = (await client.get("/api/v1/listings", params={"limit": 2})).json()["items"]
            return [item["id"] for item in first] == [cheaper.id, newcomer.id]

        await eventually(both_applied)
        detail = (await client.get("/api/v1/listings/number/88800000999")).json()
        feed = (await client.get("/api/v1/events", params={"limit": 2})).json()["items"]
        by_price_desc = (
            await client.get("/api/v1/listings", params={"sort": "price_desc", "limit": 500})
        ).json()["items"]
        metrics = (await client.get("/metrics")).text
    assert [point["price_ton"] for point in detail["history"]][-1] == "5"
    assert detail["events"][-1]["type"] == "price_changed"
    assert {event["slug"] for event in feed} == {"88800000999", "fresh"}
    ids = [item["id"] for item in by_price_desc]
    assert len(ids) == len(set(ids))  # the old position of the repriced listing is gone
    assert ids[-2:] == [newcomer.id, cheaper.id]
    assert "fragmenty_api_live_events_total 2.0" in metrics
    assert "fragmenty_api_live_updates_connected 1.0" in metrics


async def test_the_api_serves_without_the_broker(
    market: list[SeedListing], make_client: ClientFactory
) -> None:
    async with make_client(
        live_updates=True, rabbitmq_url="amqp://guest:guest@127.0.0.1:9/"
    ) as client:
        listings = await client.get("/api/v1/listings")
        ready = await client.get("/readyz")
    assert listings.status_code == 200
    assert ready.status_code == 200


async def test_events_that_arrive_together_reread_their_listings_in_one_query(
    market: list[SeedListing], settings: Settings, mongo_db: AsyncDatabase[dict[str, Any]]
) -> None:
    finds = FindCounter("listings")
    client = make_mongo_client(settings.mongodb_url, event_listeners=[finds])
    try:
        store = SnapshotStore(
            client[settings.mongodb_database],
            refresh_seconds=3600,
            metrics=ApiMetrics(CollectorRegistry()),
        )
        await store.reload()
        repriced = [listing for listing in market if listing.asset is Asset.NUMBER][:3]
        for listing in repriced:
            await mongo_db["listings"].update_one(
                {"_id": listing.id}, {"$set": {"price_nanoton": to_nanoton(Decimal("4.5"))}}
            )
        events = [make_event(listing.slug) for listing in repriced]
        events.append(make_event(repriced[0].slug))  # a second change of the same listing
        events.append(make_event("88899999999"))  # a listing not stored (yet): nothing to read
        finds.count = 0

        await store.apply_events(events)

        assert finds.count == 1
        snapshot = await store.current()
        for listing in repriced:
            assert snapshot.listings[listing.id].price_nanoton == to_nanoton(Decimal("4.5"))
    finally:
        await client.close()
