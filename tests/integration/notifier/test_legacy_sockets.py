"""The original sockets on the real servers: every message is the view's complete list."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from faststream.rabbit import RabbitBroker
from pymongo.asynchronous.database import AsyncDatabase

from fragmenty_shared.settings import Settings
from fragmenty_shared.storage import Collections
from fragmenty_shared.topology import Topology
from tests.unit.notifier.factories import make_event

from .conftest import notifier_settings, open_client, publish, running_notifier


def number_listing(slug: str, status: str, ends_at: datetime, price_ton: int) -> dict[str, Any]:
    """A listing as ingest stores it (``fragmenty_shared.storage``)."""
    return {
        "_id": f"number:{slug}",
        "asset": "number",
        "slug": slug,
        "title": f"+888 {slug[3:7]} {slug[7:]}",
        "status": status,
        "price_nanoton": price_ton * 1_000_000_000,
        "price_usd_cents": None,
        "ends_at": ends_at,
        "sold_at": None,
        "memorability": None,
        "delisted_at": None,
    }


async def test_every_message_is_the_whole_list_and_all_clients_share_one_read(
    settings: Settings,
    broker: RabbitBroker,
    topology: Topology,
    mongo_db: AsyncDatabase[dict[str, Any]],
) -> None:
    soon = datetime.now(UTC) + timedelta(hours=1)
    await mongo_db[Collections.LISTINGS].insert_many(
        [
            number_listing("88800000011", "auction", soon, 100),
            number_listing("88800000012", "sold", soon, 90),
            number_listing("88800000013", "auction", soon + timedelta(hours=1), 200),
        ]
    )
    quick = notifier_settings(settings, notifier_legacy_interval_s=0.1)
    async with running_notifier(quick) as notifier:
        clients = [await open_client(notifier, path="/ws/future-auctions") for _ in range(30)]
        try:
            firsts = [json.loads(await client.recv()) for client in clients]
            assert all(first == firsts[0] for first in firsts)
            assert [a["id"] for a in firsts[0]] == ["88800000011", "88800000013"]
            assert firsts[0][0]["minimumBid"] == 100
            # Thirty clients, one read of the listings (at start-up), one list in memory.
            assert notifier.notifier.legacy_lists.database_reads == 1

            await publish(broker, topology, make_event("88800000011", ends_at=soon, price="120"))
            for client in clients:
                changed = json.loads(await asyncio.wait_for(client.recv(), 10))
                assert [(a["id"], a["minimumBid"]) for a in changed] == [
                    ("88800000011", 120),
                    ("88800000013", 200),
                ]
        finally:
            for client in clients:
                await client.close()
