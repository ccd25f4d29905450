"""The broker topology, declared in one place and imported by every publisher and subscriber.

::

    fragmenty.listings (topic) --#--> ingest.listings (quorum, single active consumer,
                                                        delivery limit, dead-lettered)
    fragmenty.dead-letter (direct) --ingest.listings.dlq--> ingest.listings.dlq
    fragmenty.events (topic) --<asset>.<type>--> notifier.<instance> (exclusive, auto-delete)
                             --#--> alerts.events (quorum, durable, delivery limit, dead-lettered:
                                                   shared by every alerts instance)
    fragmenty.dead-letter (direct) --alerts.events.dlq--> alerts.events.dlq

Names get the settings' ``namespace`` as a prefix when it is set, so tests that share one broker
never see each other's messages.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from faststream.rabbit import ExchangeType, QueueType, RabbitExchange, RabbitQueue

# A message that crashed its consumer this many times goes to the dead-letter queue instead of
# looping forever. Debian's RabbitMQ 3.10 has no default limit for quorum queues, so it is explicit.
DELIVERY_LIMIT = 5

# Header that carries why a message was dead-lettered by ingest itself (poison messages).
DEAD_LETTER_REASON_HEADER = "x-fragmenty-reason"
# Where a message ingest dead-lettered itself was going, so that it can be replayed there.
# (RabbitMQ's own dead letters say it in their ``x-death`` header.)
ORIGINAL_EXCHANGE_HEADER = "x-original-exchange"
ORIGINAL_ROUTING_KEY_HEADER = "x-original-routing-key"
# How many times a dead letter was replayed (``fragmenty-ingest dead-letters replay``); ingest
# keeps it on what it dead-letters again, so a message that keeps failing is recognisable.
REPLAYS_HEADER = "x-fragmenty-replays"

# Header ingest sets on each price event: the moment it published it (Unix seconds, as a
# decimal string). AMQP's own timestamp property has whole-second resolution, too coarse for
# the notifier's millisecond fan-out histogram, which falls back to its own receipt time.
PUBLISHED_AT_HEADER = "x-fragmenty-published-at"

OBSERVED_ROUTING_SUFFIX = "observed"
CENSUS_ROUTING_KEY = "census.completed"


def observed_routing_key(asset: str) -> str:
    return f"{asset}.{OBSERVED_ROUTING_SUFFIX}"


@dataclass(frozen=True)
class Topology:
    """Every exchange and queue name of one deployment (or one test)."""

    namespace: str = ""

    def _name(self, base: str) -> str:
        return f"{self.namespace}.{base}" if self.namespace else base

    @property
    def listings_exchange(self) -> RabbitExchange:
        return RabbitExchange(
            self._name("fragmenty.listings"), type=ExchangeType.TOPIC, durable=True
        )

    @property
    def dead_letter_exchange(self) -> RabbitExchange:
        return RabbitExchange(
            self._name("fragmenty.dead-letter"), type=ExchangeType.DIRECT, durable=True
        )

    @property
    def events_exchange(self) -> RabbitExchange:
        return RabbitExchange(self._name("fragmenty.events"), type=ExchangeType.TOPIC, durable=True)

    @property
    def dead_letter_queue_name(self) -> str:
        return self._name("ingest.listings.dlq")

    @property
    def ingest_queue(self) -> RabbitQueue:
        return RabbitQueue(
            self._name("ingest.listings"),
            queue_type=QueueType.QUORUM,
            durable=True,
            routing_key="#",
            arguments={
                "x-delivery-limit": DELIVERY_LIMIT,
                "x-single-active-consumer": True,
                "x-dead-letter-exchange": self.dead_letter_exchange.name,
                "x-dead-letter-routing-key": self.dead_letter_queue_name,
            },
        )

    @property
    def dead_letter_queue(self) -> RabbitQueue:
        return RabbitQueue(
            self.dead_letter_queue_name,
            queue_type=QueueType.QUORUM,
            durable=True,
            routing_key=self.dead_letter_queue_name,
        )

    @property
    def alerts_dead_letter_queue_name(self) -> str:
        return self._name("alerts.events.dlq")

    @property
    def alerts_queue(self) -> RabbitQueue:
        """The alerts service's own durable queue: events wait there while it is down, and its
        instances compete for them (each event is handled by one instance)."""
        return RabbitQueue(
            self._name("alerts.events"),
            queue_type=QueueType.QUORUM,
            durable=True,
            routing_key="#",
            arguments={
                "x-delivery-limit": DELIVERY_LIMIT,
                "x-dead-letter-exchange": self.dead_letter_exchange.name,
                "x-dead-letter-routing-key": self.alerts_dead_letter_queue_name,
            },
        )

    @property
    def alerts_dead_letter_queue(self) -> RabbitQueue:
        return RabbitQueue(
            self.alerts_dead_letter_queue_name,
            queue_type=QueueType.QUORUM,
            durable=True,
            routing_key=self.alerts_dead_letter_queue_name,
        )

    def durable_queue_names(self) -> tuple[str, ...]:
        """Every durable queue this namespace can have. Unlike the instances' own queues they
        outlive every connection, so whoever drops a namespace (a test, a benchmark) deletes
        these by name (AMQP cannot list queues)."""
        return (
            self.ingest_queue.name,
            self.dead_letter_queue_name,
            self.alerts_queue.name,
            self.alerts_dead_letter_queue_name,
        )

    def exchange_names(self) -> tuple[str, ...]:
        """Every exchange this namespace declares (all durable)."""
        return (
            self.listings_exchange.name,
            self.dead_letter_exchange.name,
            self.events_exchange.name,
        )

    def subscriber_queue(self, role: str, instance_id: str | None = None) -> RabbitQueue:
        """A queue of one instance's own on the events exchange: every instance sees every event.

        Exclusive and auto-deleted, so it goes with its connection; after a reconnect it is
        declared anew, and the instance recovers what it missed from the stored events.
        """
        instance = instance_id or uuid.uuid4().hex[:12]
        return RabbitQueue(
            self._name(f"{role}.{instance}"),
            durable=False,
            exclusive=True,
            auto_delete=True,
            routing_key="#",
        )

    def notifier_queue(self, instance_id: str | None = None) -> RabbitQueue:
        return self.subscriber_queue("notifier", instance_id)
