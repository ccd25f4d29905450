"""Fan-out of a batch: clients with the same subscriptions share the work, never the result."""

from __future__ import annotations

import asyncio
import gc
import json
from types import SimpleNamespace
from typing import Any

from prometheus_client import CollectorRegistry

from fragmenty_notifier.connection import ConnectionLimits
from fragmenty_notifier.envelope import Envelope
from fragmenty_notifier.fanout import FANOUT_SLICE, choose_frames
from fragmenty_notifier.frames import Frame
from fragmenty_notifier.hub import Hub
from fragmenty_notifier.metrics import NotifierMetrics, create_metrics
from fragmenty_notifier.outbox import Pushed
from fragmenty_notifier.stream import StreamConnection
from fragmenty_shared.contracts import Asset

from .factories import make_event


class CapturingOutbox:
    """Stands in for the direct outbox: records what each way of writing was given."""

    def __init__(self, *, too_slow: bool = False) -> None:
        self.writes: list[bytes] = []
        self.wrote = asyncio.Event()
        self.pushes = 0
        self.too_slow = too_slow

    def push(self, frames: list[Frame], wire: bytes | None = None) -> Pushed:
        if self.too_slow:
            return Pushed.TOO_SLOW
        self.pushes += 1
        self.writes.append(wire if wire is not None else b"".join(f.wire for f in frames))
        self.wrote.set()
        return Pushed.WRITTEN

    async def close(self, code: int, reason: str) -> None:
        self.closed_with = code

    async def stop(self) -> None:
        """Nothing held."""

    @property
    def frames(self) -> list[dict[str, object]]:
        """Every frame written, decoded (unmasked text frames, each under 64 KiB)."""
        decoded = []
        for wire in self.writes:
            while wire:
                length, start = wire[1], 2
                if length == 126:
                    length, start = int.from_bytes(wire[2:4], "big"), 4
                decoded.append(json.loads(wire[start : start + length]))
                wire = wire[start + length :]
        return decoded


def client(
    hub: Hub,
    *subscriptions: tuple[str, dict[str, object]],
    metrics: NotifierMetrics | None = None,
    too_slow: bool = False,
) -> tuple[StreamConnection, CapturingOutbox]:
    connection = StreamConnection(
        SimpleNamespace(scope={}),  # type: ignore[arg-type]
        "client",
        ConnectionLimits(1 << 20, 8, 5, 100.0, 100),
        metrics or create_metrics(),
        store=None,  # type: ignore[arg-type]
        windows=hub.windows,
    )
    outbox = CapturingOutbox(too_slow=too_slow)
    connection.outbox = outbox  # type: ignore[assignment]
    for subscription_id, spec in subscriptions:
        batch_ms = spec.pop("batch_ms", 0)
        connection.handle_text(
            json.dumps(
                {"action": "subscribe", "id": subscription_id, "filter": spec, "batch_ms": batch_ms}
            )
        )
    outbox.writes.clear()
    outbox.pushes = 0
    hub.add(connection)
    return connection, outbox


def labels(outbox: CapturingOutbox) -> list[tuple[object, object]]:
    """(subscription, slug) per event written, ``event`` and ``events`` frames alike."""
    found: list[tuple[object, object]] = []
    for frame in outbox.frames:
        events: Any = frame["events"] if frame["type"] == "events" else [frame["event"]]
        found.extend((frame["subscription"], event["slug"]) for event in events)
    return found


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    value = registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def test_same_subscriptions_share_frames_and_order_still_decides_the_label() -> None:
    hub = Hub(create_metrics(), max_connections=10, max_per_client=10)
    numbers_first: list[tuple[str, dict[str, object]]] = [
        ("n", {"assets": ["number"]}),
        ("all", {}),
    ]
    (_, twin_a), (_, twin_b) = client(hub, *numbers_first), client(hub, *numbers_first)
    _, all_first = client(hub, ("all", {}), ("n", {"assets": ["number"]}))
    _, usernames = client(hub, ("u", {"assets": ["username"]}))

    number, username = make_event("88800000123"), make_event("boris", asset=Asset.USERNAME)
    assert hub.publish_batch([Envelope.wrap(number), Envelope.wrap(username)]) == 2

    assert labels(twin_a) == [("n", "88800000123"), ("all", "boris")]
    assert twin_a.writes == twin_b.writes  # one write each, the same bytes
    assert len(twin_a.writes) == 1
    assert twin_a.writes[0] is twin_b.writes[0]  # worked out once for the group
    assert labels(all_first) == [("all", "88800000123"), ("all", "boris")]
    assert labels(usernames) == [("u", "boris")]
    assert usernames.pushes == 1


def test_a_client_that_wants_nothing_of_a_batch_gets_no_write() -> None:
    hub = Hub(create_metrics(), max_connections=10, max_per_client=10)
    _, usernames = client(hub, ("u", {"assets": ["username"]}))
    hub.publish_batch([Envelope.wrap(make_event("88800000124"))])
    assert usernames.writes == []


async def test_a_too_slow_client_in_a_group_is_dropped_and_the_rest_still_get_the_batch() -> None:
    metrics = create_metrics()
    hub = Hub(metrics, max_connections=10, max_per_client=10)
    _, before = client(hub, ("all", {}), metrics=metrics)
    slow, _ = client(hub, ("all", {}), metrics=metrics, too_slow=True)
    _, after = client(hub, ("all", {}), metrics=metrics)

    event = make_event("88800000125")
    hub.publish_batch([Envelope.wrap(event)])

    assert labels(before) == labels(after) == [("all", "88800000125")]
    assert slow.closed
    assert sample(metrics.registry, "fragmenty_notifier_clients_dropped_total", reason="slow") == 1
    # Only what was written is counted out.
    assert sample(metrics.registry, "fragmenty_notifier_events_out_total", source="live") == 2


async def test_every_copy_written_is_counted_with_its_latency() -> None:
    metrics = create_metrics()
    hub = Hub(metrics, max_connections=1000, max_per_client=1000)
    clients = FANOUT_SLICE + 3  # more than one slice of a group
    for _ in range(clients):
        client(hub, ("all", {}), metrics=metrics)
    envelopes = [
        Envelope.wrap(make_event("88800000126"), published_at=1.0),  # long ago
        Envelope.wrap(make_event("88800000127")),  # no publisher stamp: from its arrival
    ]
    hub.publish_batch(envelopes)

    registry = metrics.registry
    histogram = "fragmenty_notifier_fanout_latency_seconds"
    assert sample(registry, "fragmenty_notifier_events_out_total", source="live") == 2 * clients
    assert sample(registry, f"{histogram}_count", origin="published") == clients
    assert sample(registry, f"{histogram}_count", origin="received") == clients
    # The stamped event waited since 1970: every copy lands in +Inf, none in a finite bucket.
    assert sample(registry, f"{histogram}_bucket", origin="published", le="10.0") == 0
    assert sample(registry, f"{histogram}_bucket", origin="received", le="10.0") == clients


def test_clients_in_groups_of_their_own_are_each_written_and_counted_once() -> None:
    metrics = create_metrics()
    hub = Hub(metrics, max_connections=1000, max_per_client=1000)
    clients = FANOUT_SLICE + 5
    outboxes = [
        client(hub, (f"s{index}", {}), metrics=metrics)[1] for index in range(clients)
    ]  # a subscription id of its own: a group of one each
    hub.publish_batch([Envelope.wrap(make_event("88800000128"), published_at=1.0)])

    assert [labels(outbox) for outbox in outboxes] == [
        [(f"s{index}", "88800000128")] for index in range(clients)
    ]
    registry = metrics.registry
    assert sample(registry, "fragmenty_notifier_events_out_total", source="live") == clients
    assert (
        sample(registry, "fragmenty_notifier_fanout_latency_seconds_count", origin="published")
        == clients
    )


async def test_a_closing_client_does_not_take_its_groups_frames_with_it() -> None:
    hub = Hub(create_metrics(), max_connections=10, max_per_client=10)
    closing, _ = client(hub, ("all", {}))  # first in the group
    _, open_one = client(hub, ("all", {}))
    closing.drop_too_slow()
    hub.publish_batch([Envelope.wrap(make_event("88800000129"))])
    assert labels(open_one) == [("all", "88800000129")]


def test_a_pass_allocates_nothing_per_subscriber() -> None:
    """Objects a pass keeps alive per socket would be promoted by the collector and bring on
    full collections, which stop the loop for as long as every connection takes to walk."""

    def objects_held_by_a_plan(subscribers: int) -> int:
        hub = Hub(create_metrics(), max_connections=10_000, max_per_client=10_000)
        connections = [client(hub, ("all", {}))[0] for _ in range(subscribers)]
        envelopes = [Envelope.wrap(make_event("88800000128"), published_at=1.0)]
        gc.disable()
        try:
            before = gc.get_count()[0]
            plan = choose_frames(connections, envelopes, None)
            held = gc.get_count()[0] - before
        finally:
            gc.enable()
        assert sum(len(delivery.subscribers) for delivery in plan) == subscribers
        return held

    assert objects_held_by_a_plan(2_000) == objects_held_by_a_plan(20)
