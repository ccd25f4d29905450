"""The consumer: an unreadable message is dropped without stopping the flow; counters move."""

from __future__ import annotations

from faststream.rabbit import RabbitBroker

from fragmenty_shared.topology import Topology
from tests.unit.notifier.factories import make_event

from .conftest import RunningNotifier, next_frame, open_client, publish, subscribe


async def test_an_unreadable_message_is_dropped_and_the_next_event_arrives(
    notifier: RunningNotifier, broker: RabbitBroker, topology: Topology
) -> None:
    async with open_client(notifier) as client:
        await subscribe(client, "all")
        await broker.publish(
            b'{"event_id": "half an event"}',
            exchange=topology.events_exchange,
            routing_key="number.price_changed",
        )
        event = make_event("88800000077")
        await publish(broker, topology, event, stamp=False)
        frame = await next_frame(client)
        assert frame["event"]["event_id"] == event.event_id

    registry = notifier.notifier.metrics.registry
    assert (
        registry.get_sample_value("fragmenty_notifier_events_in_total", {"source": "broker"}) == 1
    )
    # Without the publisher's timestamp, latency is measured from the notifier's receipt.
    received = registry.get_sample_value(
        "fragmenty_notifier_fanout_latency_seconds_count", {"origin": "received"}
    )
    assert received == 1
