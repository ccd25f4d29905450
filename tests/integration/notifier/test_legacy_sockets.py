"""The original sockets on the real servers: the current list on connect, then changes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from faststream.rabbit import RabbitBroker
from pymongo.asynchronous.database import AsyncDatabase

from fragmenty_shared.storage import Collections
from fragmenty_shared.topology import Topology
from tests.unit.notifier.factories import make_event

from .conftest import RunningNotifier, open_client, publish


async def test_future_auctions_sends_the_list_then_changes(
    notifier: RunningNotifier,
    broker: RabbitBroker,
    topology: Topology,
    mongo_db: AsyncDatabase[dict[str, Any]],
) -> None:
    soon = datetime.now(UTC) + timedelta(hours=1)
    await mongo_db[Collections.LISTINGS].insert_many(
        [
            {
                "_id": f"number:{slug}",
                "asset": "number",
                "slug": slug,
                "title": f"+{slug}",
                "status": status,
                "price_nanoton": 100_000_000_000,
                "price_usd_cents": None,
                "ends_at": soon,
                "sold_at": None,
                "memorability": None,
                "delisted_at": None,
            }
            for slug, status in [("88800000011", "auction"), ("88800000012", "sold")]
        ]
    )
    async with open_client(notifier, path="/ws/future-auctions") as client:
        initial = json.loads(await client.recv())
        assert [auction["id"] for auction in initial] == ["88800000011"]
        assert initial[0]["minimumBid"] == 100

        await publish(broker, topology, make_event("88800000011", ends_at=soon, price="120"))
        (change,) = json.loads(await client.recv())
        assert change["id"] == "88800000011"
        assert change["minimumBid"] == 120
        assert change["removed"] is False
