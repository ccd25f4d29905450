"""The hub: admission limits, fan-out to every connection, and dedupe by event_id."""

from __future__ import annotations

from collections.abc import AsyncIterator

from fragmenty_notifier.consumer import EventConsumer
from fragmenty_notifier.envelope import Envelope
from fragmenty_notifier.hub import Hub
from fragmenty_notifier.metrics import create_metrics
from fragmenty_notifier.settings import NotifierSettings
from fragmenty_shared.contracts import PriceEvent

from .factories import make_event


class FakeConnection:
    endpoint = "ws"
    receives_events = True

    def __init__(self, client_host: str) -> None:
        self.client_host = client_host
        self.offered: list[str] = []
        self.closed_with: int | None = None
        self.batches: list[list[str]] = []

    def frames_key(self) -> None:
        return None  # chooses every batch itself

    def choose(self, envelopes: list[Envelope], window_ms: int | None) -> list[object]:
        self.batches.append([envelope.event_id for envelope in envelopes])
        self.offered.extend(envelope.event_id for envelope in envelopes)
        return []  # writes nothing: the hub's choice of who sees which batch is under test

    async def close(self, code: int, message: str) -> None:
        self.closed_with = code


def make_hub(**limits: int) -> Hub:
    return Hub(
        create_metrics(),
        max_connections=limits.get("total", 3),
        max_per_client=limits.get("per_client", 2),
    )


def test_limits_per_address_and_in_total() -> None:
    hub = make_hub()
    a1, a2, b1 = FakeConnection("a"), FakeConnection("a"), FakeConnection("b")
    for connection in (a1, a2):
        assert hub.refusal("a") is None
        hub.add(connection)  # type: ignore[arg-type]
    refusal = hub.refusal("a")
    assert refusal is not None
    assert refusal.status_code == 429
    hub.add(b1)  # type: ignore[arg-type]
    full = hub.refusal("c")
    assert full is not None
    assert full.status_code == 503
    hub.remove(a1)  # type: ignore[arg-type]
    assert hub.refusal("a") is None
    assert len(hub) == 2


def test_every_connection_gets_each_event_once() -> None:
    hub = make_hub()
    one, two = FakeConnection("a"), FakeConnection("b")
    hub.add(one)  # type: ignore[arg-type]
    hub.add(two)  # type: ignore[arg-type]
    first, second = make_event("88800000001"), make_event("88800000002")
    assert hub.publish(Envelope.wrap(first))
    assert not hub.publish(Envelope.wrap(first))  # republished by an outbox relay
    assert hub.publish(Envelope.wrap(second), source="recovery")
    assert one.offered == two.offered == [first.event_id, second.event_id]
    assert hub.knows(first.event_id)


async def test_shutdown_closes_everyone_with_1001_and_refuses_newcomers() -> None:
    hub = make_hub()
    connection = FakeConnection("a")
    hub.add(connection)  # type: ignore[arg-type]
    await hub.close_all(timeout_s=1)
    assert connection.closed_with == 1001
    refusal = hub.refusal("b")
    assert refusal is not None
    assert refusal.reason == "shutdown"


def test_events_that_arrive_together_go_out_together_without_repeats() -> None:
    hub = make_hub()
    connection = FakeConnection("a")
    hub.add(connection)  # type: ignore[arg-type]
    old, new_one, new_two = (make_event(f"8880000010{i}") for i in range(3))
    hub.publish(Envelope.wrap(old))
    fresh = hub.publish_batch([Envelope.wrap(e) for e in (old, new_one, new_two, new_one)])
    assert fresh == 2
    assert connection.batches == [[old.event_id], [new_one.event_id, new_two.event_id]]


def test_an_admitted_handshake_counts_before_its_connection_is_added() -> None:
    # The 101 answer goes out before the connection is added; the client's next handshake
    # (maybe on another worker) must already see this one.
    hub = make_hub(per_client=2, total=10)
    assert hub.admit("a") is None
    assert hub.admit("a") is None
    refused = hub.admit("a")
    assert refused is not None
    assert refused.status_code == 429
    hub.add(FakeConnection("a"))  # type: ignore[arg-type]  # takes over one admission's count
    assert hub.admit("a") is not None
    hub.release("a")  # the other handshake never opened
    assert hub.admit("a") is None
    hub.release("a")
    hub.release("a")  # nothing left to give back: counts stay right
    assert hub.refusal("a") is None
    assert hub.admit("a") is None
    assert hub.admit("a") is not None


class PagedStore:
    """Stored events in the pages ``EventStore.event_pages_after`` reads them in."""

    def __init__(self, pages: list[list[PriceEvent]]) -> None:
        self.pages = pages

    async def event_pages_after(self, since: int, *, limit: int) -> AsyncIterator[list[PriceEvent]]:
        for page in self.pages:
            yield page


async def test_recovery_fans_out_each_page_of_missed_events_in_one_batch() -> None:
    metrics = create_metrics()
    hub = Hub(metrics, max_connections=3, max_per_client=2)
    connection = FakeConnection("a")
    hub.add(connection)  # type: ignore[arg-type]
    events = [make_event(f"8880000020{n}") for n in range(5)]
    hub.publish(Envelope.wrap(events[1]))  # arrived live before the outage
    store = PagedStore([events[:3], events[3:]])
    consumer = EventConsumer(NotifierSettings(), hub, store, metrics)  # type: ignore[arg-type]

    await consumer._recover(since=0)

    assert connection.batches == [
        [events[1].event_id],
        [events[0].event_id, events[2].event_id],
        [events[3].event_id, events[4].event_id],
    ]
    assert metrics.registry.get_sample_value("fragmenty_notifier_recovered_events_total") == 4
