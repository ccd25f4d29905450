"""The FastStream subscriber, on FastStream's TestRabbitBroker (no RabbitMQ): what it hands the
processor, when it acknowledges, and that non-events are rejected, not retried."""

from typing import Any

from faststream.rabbit import RabbitBroker, TestRabbitBroker

from fragmenty_alerts.consumer import build_router
from fragmenty_shared.topology import PUBLISHED_AT_HEADER, Topology
from tests.unit.notifier.factories import make_event


class RecordingProcessor:
    def __init__(self, failures: int = 0) -> None:
        self.events: list[Any] = []
        self.failures = failures
        self.calls = 0

    async def process(
        self, event: Any, *, redelivered: bool = False, published_at: float | None = None
    ) -> int:
        self.calls += 1
        if self.calls <= self.failures:
            raise ConnectionError("database away")
        self.events.append((event, published_at))
        return 1


async def test_events_reach_the_processor_with_their_publication_time() -> None:
    topology = Topology("unit")
    processor = RecordingProcessor()
    broker = RabbitBroker()
    router = build_router(processor, topology)  # type: ignore[arg-type]
    broker.include_router(router)
    event = make_event()
    async with TestRabbitBroker(broker) as test_broker:
        await test_broker.publish(
            event.model_dump(mode="json"),
            exchange=topology.events_exchange,
            routing_key=event.routing_key,
            headers={PUBLISHED_AT_HEADER: "1700000000.5"},
        )
        assert processor.events == [(event, 1700000000.5)]


async def test_a_failing_store_is_retried_before_the_ack() -> None:
    topology = Topology("unit")
    processor = RecordingProcessor(failures=2)
    broker = RabbitBroker()
    broker.include_router(build_router(processor, topology))  # type: ignore[arg-type]
    async with TestRabbitBroker(broker) as test_broker:
        await test_broker.publish(
            make_event().model_dump(mode="json"),
            exchange=topology.events_exchange,
            routing_key="number.price_changed",
        )
    assert processor.calls == 3
    assert len(processor.events) == 1


async def test_a_message_that_is_not_an_event_never_reaches_the_processor() -> None:
    topology = Topology("unit")
    processor = RecordingProcessor()
    broker = RabbitBroker()
    broker.include_router(build_router(processor, topology))  # type: ignore[arg-type]
    async with TestRabbitBroker(broker) as test_broker:
        await test_broker.publish(
            {"nonsense": True}, exchange=topology.events_exchange, routing_key="number.listed"
        )
    assert processor.calls == 0
