"""Batched delivery (``batch_ms``) and coalescing for a client that is behind."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace

from fragmenty_notifier.envelope import Envelope
from fragmenty_notifier.frames import Frame, coalesce
from fragmenty_notifier.hub import Hub
from fragmenty_notifier.metrics import create_metrics
from fragmenty_notifier.outbox import DirectOutbox, Pushed
from fragmenty_shared.contracts import Asset

from .factories import make_event
from .test_fan_out import CapturingOutbox, client, labels


async def written(outbox: CapturingOutbox, count: int) -> None:
    async with asyncio.timeout(2):
        while len(outbox.writes) < count:
            outbox.wrote.clear()
            await outbox.wrote.wait()


async def test_a_batched_subscription_gets_its_window_in_one_frame() -> None:
    hub = Hub(create_metrics(), max_connections=10, max_per_client=10)
    # Numbers at once, everything else in 20 ms windows; the first match decides.
    _, mixed = client(hub, ("n", {"assets": ["number"]}), ("rest", {"batch_ms": 20}))
    _, batched = client(hub, ("all", {"batch_ms": 20}))
    first, second = (
        make_event("boris", asset=Asset.USERNAME),
        make_event("alice", asset=Asset.USERNAME),
    )
    number = make_event("88800000131")
    hub.publish_batch([Envelope.wrap(first)])
    hub.publish_batch([Envelope.wrap(number), Envelope.wrap(second)])

    assert labels(mixed) == [("n", "88800000131")]  # per-event: not held for the window
    assert batched.writes == []
    await written(batched, 1)
    await written(mixed, 2)
    (window,) = batched.frames
    assert window["type"] == "events"
    assert labels(batched) == [("all", "boris"), ("all", "88800000131"), ("all", "alice")]
    assert mixed.frames[1]["type"] == "events"
    assert labels(mixed) == [("n", "88800000131"), ("rest", "boris"), ("rest", "alice")]


async def test_a_window_opens_with_its_first_event_and_ends_with_its_last_user() -> None:
    hub = Hub(create_metrics(), max_connections=10, max_per_client=10)
    connection, outbox = client(hub, ("all", {"batch_ms": 10}))
    hub.publish_batch([Envelope.wrap(make_event("88800000132"))])
    await written(outbox, 1)
    hub.remove(connection)
    await connection.finish()  # releases its window: no more windows open for nobody
    assert hub.windows._users == {}
    hub.publish_batch([Envelope.wrap(make_event("88800000133"))])
    assert hub.windows._open == {}


def test_coalescing_merges_neighbouring_batches_of_a_subscription_only() -> None:
    a, b, c, d = (Envelope.wrap(make_event(f"8880000014{i}")) for i in range(4))
    frames = [
        Frame.of_events("s", (a,)),
        Frame.of_events("s", (b,)),
        c.frame_for("plain"),  # a per-event subscription: its client may not read "events"
        Frame.of_events("s", (d,)),
    ]
    merged = coalesce(frames)
    assert [json.loads(f.text)["type"] for f in merged] == ["events", "event", "events"]
    assert merged[0].envelopes == (a, b)
    assert [e["slug"] for e in json.loads(merged[0].text)["events"]] == [a.event.slug, b.event.slug]


class FakeTransport:
    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.wrote = asyncio.Event()
        self.buffered = 0

    def is_closing(self) -> bool:
        return False

    def get_write_buffer_size(self) -> int:
        return self.buffered

    def write(self, data: bytes) -> None:
        self.written.append(data)
        self.wrote.set()


async def test_a_client_that_is_behind_is_coalesced_then_dropped_only_past_the_limit() -> None:
    transport = FakeTransport()
    protocol = SimpleNamespace(transport=transport, writable=asyncio.Event(), close_sent=False)
    metrics = create_metrics()
    outbox = DirectOutbox(protocol, 4096, metrics.frames_written)  # type: ignore[arg-type]
    protocol.writable.clear()  # the transport paused writing: the client reads slowly
    windows = [
        Frame.of_events("s", (Envelope.wrap(make_event(f"8880000015{i}")),)) for i in range(3)
    ]
    for frame in windows:
        assert outbox.push([frame]) is Pushed.HELD
    assert transport.written == []
    protocol.writable.set()  # drained
    await asyncio.wait_for(transport.wrote.wait(), 1)
    (wire,) = transport.written  # one write, one frame for the three windows
    assert len(json.loads(wire[4:])["events"]) == 3
    sample = metrics.registry.get_sample_value
    assert sample("fragmenty_notifier_events_out_total", {"source": "live"}) == 3
    assert sample("fragmenty_notifier_catch_up_total", {"what": "writes"}) == 1
    assert sample("fragmenty_notifier_catch_up_total", {"what": "frames_saved"}) == 2

    protocol.writable.clear()
    big = Frame("x" * 5000)
    assert outbox.push([big]) is Pushed.TOO_SLOW
