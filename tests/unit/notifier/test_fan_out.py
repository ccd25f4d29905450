"""Fan-out of a batch: clients with the same subscriptions share the work, never the result."""

from __future__ import annotations

import json
from types import SimpleNamespace

from fragmenty_notifier.connection import ConnectionLimits
from fragmenty_notifier.envelope import Envelope
from fragmenty_notifier.frames import Frame
from fragmenty_notifier.hub import Hub
from fragmenty_notifier.metrics import create_metrics
from fragmenty_notifier.stream import StreamConnection
from fragmenty_shared.contracts import Asset

from .factories import make_event


class CapturingOutbox:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.frames: list[str] = []

    def offer(self, frame: Frame) -> bool:
        self.writes.append(frame.wire)
        self.frames.append(frame.text)
        return True

    def offer_many(self, frames: list[Frame], wire: bytes | None = None) -> bool:
        self.writes.append(wire if wire is not None else b"".join(f.wire for f in frames))
        self.frames.extend(frame.text for frame in frames)
        return True


def client(hub: Hub, *subscriptions: tuple[str, dict[str, object]]) -> CapturingOutbox:
    metrics = create_metrics()
    connection = StreamConnection(
        SimpleNamespace(scope={}),  # type: ignore[arg-type]
        "client",
        ConnectionLimits(1 << 20, 8, 5, 100.0, 100),
        metrics,
        store=None,  # type: ignore[arg-type]
    )
    outbox = CapturingOutbox()
    connection._outbox = outbox  # type: ignore[assignment]
    for subscription_id, spec in subscriptions:
        connection.handle_text(
            json.dumps({"action": "subscribe", "id": subscription_id, "filter": spec})
        )
    outbox.writes.clear()
    outbox.frames.clear()
    hub.add(connection)
    return outbox


def labels(outbox: CapturingOutbox) -> list[tuple[str, str]]:
    return [
        (frame["subscription"], frame["event"]["slug"]) for frame in map(json.loads, outbox.frames)
    ]


def test_same_subscriptions_share_frames_and_order_still_decides_the_label() -> None:
    hub = Hub(create_metrics(), max_connections=10, max_per_client=10)
    numbers_first: list[tuple[str, dict[str, object]]] = [
        ("n", {"assets": ["number"]}),
        ("all", {}),
    ]
    twin_a, twin_b = client(hub, *numbers_first), client(hub, *numbers_first)
    all_first = client(hub, ("all", {}), ("n", {"assets": ["number"]}))
    usernames = client(hub, ("u", {"assets": ["username"]}))

    number, username = make_event("88800000123"), make_event("boris", asset=Asset.USERNAME)
    assert hub.publish_batch([Envelope.wrap(number), Envelope.wrap(username)]) == 2

    assert labels(twin_a) == [("n", "88800000123"), ("all", "boris")]
    assert twin_a.writes == twin_b.writes  # one write each, the same bytes
    assert len(twin_a.writes) == 1
    assert labels(all_first) == [("all", "88800000123"), ("all", "boris")]
    assert labels(usernames) == [("u", "boris")]
