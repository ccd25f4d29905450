"""``fragmenty-asyncapi``: the AsyncAPI document of every Fragmenty message.

Built by FastStream from the declarations themselves: the shared topology's exchanges and queues,
the contracts' pydantic models (their field descriptions become the schema's), the alerts
service's real subscriber, and documentation-only declarations of what the crawler, ingest and
the notifier publish and consume (those services talk to aio-pika directly for speed, so they
have no FastStream objects of their own to document).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from faststream.rabbit import RabbitBroker
from faststream.specification import AsyncAPI

from fragmenty_alerts.consumer import build_router
from fragmenty_shared.contracts import (
    CensusCompleted,
    ListingObserved,
    ListingsObserved,
    PriceEvent,
)
from fragmenty_shared.topology import CENSUS_ROUTING_KEY, Topology

DEFAULT_OUT = Path("docs/asyncapi")


def document_broker(topology: Topology) -> RabbitBroker:
    broker = RabbitBroker("amqp://rabbitmq:5672/", description="Fragmenty's RabbitMQ")
    broker.publisher(
        exchange=topology.listings_exchange,
        routing_key="<asset>.observed",
        schema=ListingsObserved,
        title="crawler:ListingsObserved",
        description="The listings of one fetched page (schema version 2): one message per page.",
    )
    broker.publisher(
        exchange=topology.listings_exchange,
        routing_key="<asset>.observed",
        schema=ListingObserved,
        title="crawler:ListingObserved",
        description="One listing per message (schema version 1), as crawlers before pages sent "
        "it; ingest still accepts it.",
    )
    broker.publisher(
        exchange=topology.listings_exchange,
        routing_key=CENSUS_ROUTING_KEY,
        schema=CensusCompleted,
        title="crawler:CensusCompleted",
        description="Which views a crawl covered and whether each was complete.",
    )

    @broker.subscriber(
        topology.ingest_queue,
        topology.listings_exchange,
        title="ingest.listings:consume",
        description="Ingest: dedupe, history, rollups, outbox (single active consumer).",
    )
    async def ingest_listings(
        message: ListingsObserved | ListingObserved | CensusCompleted,
    ) -> None:
        """Documentation only; ingest consumes with aio-pika (see fragmenty_ingest.consumer)."""

    broker.publisher(
        exchange=topology.events_exchange,
        routing_key="<asset>.<type>",
        schema=PriceEvent,
        title="ingest:PriceEvent",
        description="Something changed about a listing; published with confirms after storing.",
    )

    @broker.subscriber(
        topology.notifier_queue("<instance>"),
        topology.events_exchange,
        title="notifier.<instance>:consume",
        description="Each notifier instance's own exclusive queue: every instance sees every event.",
    )
    async def notifier_events(event: PriceEvent) -> None:
        """Documentation only; the notifier consumes with aio-pika (see fragmenty_shared.events_subscription)."""

    # The alerts service's real subscriber; its handler is never run here.
    broker.include_router(build_router(_NeverCalled(), topology))  # type: ignore[arg-type]
    return broker


class _NeverCalled:
    async def process(self, *_: Any, **__: Any) -> int:
        raise RuntimeError("documentation only")


def specification_json() -> dict[str, Any]:
    spec = AsyncAPI(
        document_broker(Topology()),
        title="Fragmenty",
        version="1",
        description="Every message between Fragmenty's services: crawler -> ingest -> everyone.",
    )
    document: dict[str, Any] = json.loads(spec.to_specification().to_json())
    return document


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="fragmenty-asyncapi",
        description="Write the AsyncAPI document of every Fragmenty message.",
    )
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help="directory (default docs/asyncapi)"
    )
    arguments = parser.parse_args(argv)
    arguments.out.mkdir(parents=True, exist_ok=True)
    target = arguments.out / "asyncapi.json"
    target.write_text(
        json.dumps(specification_json(), indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    print(target)


if __name__ == "__main__":
    main()
