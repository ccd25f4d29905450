"""Every filter key, against events that really went through RabbitMQ.

Each client holds the filter under test as ``f`` and an empty filter as ``rest``. An event
reaches a connection at most once, under its first matching subscription, so every event
arrives exactly once on every client, labelled ``f`` when the filter matched and ``rest`` when
not: both what a filter lets through and what it holds back are seen, with no timing guesses.
"""

from __future__ import annotations

from typing import Any

from faststream.rabbit import RabbitBroker

from fragmenty_shared.contracts import Asset, EventType, ListingStatus
from fragmenty_shared.topology import Topology
from tests.unit.notifier.factories import make_event

from .conftest import RunningNotifier, frames_until, open_client, publish, subscribe

EVENTS = {
    "num_up": make_event(
        "88800001234", change_pct=50.0, memorability=0.9, tags=["repeating"], price="150"
    ),
    "boris_listed": make_event(
        "boris", asset=Asset.USERNAME, type=EventType.LISTED, price="20", old_price=None
    ),
    "num_sold": make_event(
        "88801110000",
        type=EventType.SOLD,
        status=ListingStatus.SOLD,
        price="5000",
        old_price="4000",
        change_pct=25.0,
        memorability=0.3,
        tags=["round"],
    ),
    "alice_drop": make_event(
        "alice_x",
        asset=Asset.USERNAME,
        price="10",
        old_price="100",
        change_pct=-90.0,
        tags=["short"],
    ),
    "num_delisted": make_event(
        "88809999999", type=EventType.DELISTED, price=None, old_price="300", memorability=0.5
    ),
}

FILTERS: dict[str, tuple[dict[str, Any], set[str]]] = {
    "assets": ({"assets": ["username"]}, {"boris_listed", "alice_drop"}),
    "types": ({"types": ["sold", "delisted"]}, {"num_sold", "num_delisted"}),
    "slugs": ({"slugs": ["88800001234", "boris"]}, {"num_up", "boris_listed"}),
    "pattern_number": ({"pattern": "+888 0111 ****"}, {"num_sold"}),
    "pattern_username": ({"pattern": "@ALI"}, {"alice_drop"}),
    "min_price_ton": ({"min_price_ton": "200"}, {"num_sold", "num_delisted"}),
    "max_price_ton": ({"max_price_ton": "20"}, {"boris_listed", "alice_drop"}),
    "min_change_pct": ({"min_change_pct": 40}, {"num_up", "alice_drop"}),
    "min_memorability": ({"min_memorability": 0.5}, {"num_up", "num_delisted"}),
    "tags": ({"tags": ["round", "short"]}, {"num_sold", "alice_drop"}),
    "combined": ({"assets": ["number"], "max_price_ton": "5000", "tags": ["round"]}, {"num_sold"}),
}


async def test_every_filter_key_on_the_real_broker(
    notifier: RunningNotifier, broker: RabbitBroker, topology: Topology
) -> None:
    clients = {}
    try:
        for key, (spec, _) in FILTERS.items():
            client = await open_client(notifier)
            clients[key] = client
            await subscribe(client, "f", spec)
            await subscribe(client, "rest")
        for event in EVENTS.values():
            await publish(broker, topology, event)

        name_of = {event.event_id: name for name, event in EVENTS.items()}
        seen: dict[str, dict[str, str]] = {}
        for key, client in clients.items():
            frames = await frames_until(client, len(EVENTS))
            seen[key] = {
                name_of[frame["event"]["event_id"]]: frame["subscription"] for frame in frames
            }
        expected = {
            key: {name: ("f" if name in hits else "rest") for name in EVENTS}
            for key, (_, hits) in FILTERS.items()
        }
        assert seen == expected
    finally:
        for client in clients.values():
            await client.close()
