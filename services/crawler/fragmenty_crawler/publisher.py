"""Publishing to the listings exchange: persistent, confirmed, many messages in flight at once."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from faststream.rabbit import RabbitBroker

from fragmenty_shared.broker import declare_listings_topology
from fragmenty_shared.contracts import CensusCompleted, ListingObserved
from fragmenty_shared.topology import CENSUS_ROUTING_KEY, Topology, observed_routing_key

# Batches (a page's observations) published at the same time: two keep the broker busy while
# the confirms of one batch come back, and bound the tasks alive to two pages' worth.
BATCHES_IN_FLIGHT = 2


class ListingsPublisher:
    """Sends observations and census messages; each call returns once RabbitMQ confirmed all.

    ``make_broker`` turns publisher confirms on, so every ``broker.publish`` awaits its confirm;
    gathering many of them keeps up to ``MAX_IN_FLIGHT`` unconfirmed at once instead of one.
    """

    def __init__(self, broker: RabbitBroker, topology: Topology) -> None:
        self._broker = broker
        self._topology = topology
        self._exchange = topology.listings_exchange
        self._batches = asyncio.Semaphore(BATCHES_IN_FLIGHT)

    async def declare(self) -> None:
        """Make sure the exchange and the ingest queue exist (a message to an exchange without
        a bound queue is dropped); idempotent, so every census calls it first."""
        await declare_listings_topology(self._broker, self._topology)

    async def publish_observations(self, observations: Sequence[ListingObserved]) -> None:
        """Publish all; raises (after the others finished) if any was not confirmed."""
        async with self._batches:
            results = await asyncio.gather(
                *(self._publish_one(observation) for observation in observations),
                return_exceptions=True,
            )
        errors = [result for result in results if isinstance(result, BaseException)]
        if errors:
            raise PublishError(len(errors), len(observations)) from errors[0]

    async def publish_census(self, census: CensusCompleted) -> None:
        await self._broker.publish(
            census, exchange=self._exchange, routing_key=CENSUS_ROUTING_KEY, persist=True
        )

    async def _publish_one(self, observation: ListingObserved) -> None:
        await self._broker.publish(
            observation,
            exchange=self._exchange,
            routing_key=observed_routing_key(observation.asset.value),
            persist=True,
        )


class PublishError(Exception):
    def __init__(self, failed: int, total: int) -> None:
        super().__init__(f"{failed} of {total} observations were not confirmed")
        self.failed = failed
        self.total = total
