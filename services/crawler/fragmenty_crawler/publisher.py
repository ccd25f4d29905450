"""Publishing to the listings exchange: one persistent, confirmed message per page."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from faststream.rabbit import RabbitBroker

from fragmenty_shared.broker import declare_listings_topology
from fragmenty_shared.contracts import CensusCompleted, ListingObserved, pages_of
from fragmenty_shared.topology import CENSUS_ROUTING_KEY, Topology, observed_routing_key

# Pages published at the same time: two keep the broker busy while the confirm of one comes
# back, and bound what waits in memory to two pages' worth.
BATCHES_IN_FLIGHT = 2


class ListingsPublisher:
    """Sends pages of observations and census messages; each call returns once RabbitMQ
    confirmed all.

    A page's observations go out as one ``ListingsObserved`` message (schema version 2), not
    one message per row: RabbitMQ's and ingest's cost is per message. ``make_broker`` turns
    publisher confirms on, so every ``broker.publish`` awaits its confirm.
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
        """Publish a page's observations (one message, more only past ``MAX_PAGE_ROWS`` or where
        crawl, asset or rate change); raises if any was not confirmed, naming the rows lost."""
        pages = pages_of(observations)
        async with self._batches:
            results = await asyncio.gather(
                *(
                    self._broker.publish(
                        page,
                        exchange=self._exchange,
                        routing_key=observed_routing_key(page.asset.value),
                        persist=True,
                    )
                    for page in pages
                ),
                return_exceptions=True,
            )
        errors = [
            (page, result)
            for page, result in zip(pages, results, strict=True)
            if isinstance(result, BaseException)
        ]
        if errors:
            lost = sum(len(page.rows) for page, _ in errors)
            raise PublishError(lost, len(observations)) from errors[0][1]

    async def publish_census(self, census: CensusCompleted) -> None:
        await self._broker.publish(
            census, exchange=self._exchange, routing_key=CENSUS_ROUTING_KEY, persist=True
        )


class PublishError(Exception):
    def __init__(self, failed: int, total: int) -> None:
        super().__init__(f"{failed} of {total} observations were not confirmed")
        self.failed = failed
        self.total = total
