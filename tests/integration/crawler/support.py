"""Helpers for crawler integration tests: a census of an in-process simulator, and the queue."""

from __future__ import annotations

import asyncio
from collections import Counter
from decimal import Decimal
from typing import Any

import httpx
from faststream.rabbit import RabbitBroker

from fragmenty_crawler.census import CensusReport
from fragmenty_crawler.main import build_runner
from fragmenty_crawler.metrics import CrawlerMetrics
from fragmenty_crawler.settings import CrawlerSettings
from fragmenty_shared.contracts import (
    CensusCompleted,
    ListingObserved,
    listings_message_adapter,
    observations_in,
)
from fragmenty_shared.settings import Settings
from fragmenty_shared.topology import Topology

Message = ListingObserved | CensusCompleted


def crawler_settings(settings: Settings, base_url: str, **overrides: Any) -> CrawlerSettings:
    """The test's namespace and database, politeness off, the simulator as Fragment."""
    values: dict[str, Any] = {
        "namespace": settings.namespace,
        "mongodb_database": settings.mongodb_database,
        "fragment_url": base_url,
        "politeness": False,
        "prior_state": "memory",
        "item_pages": "none",
        "max_backoff_s": 5.0,
    }
    return CrawlerSettings(**{**values, **overrides})


async def run_census(
    settings: CrawlerSettings, broker: RabbitBroker, metrics: CrawlerMetrics | None = None
) -> CensusReport:
    return await build_runner(settings, broker, metrics or CrawlerMetrics()).run()


async def drain(
    broker: RabbitBroker, topology: Topology, censuses: int, wait_s: float = 30.0
) -> list[Message]:
    """Every message on the ingest queue up to the ``censuses``-th CensusCompleted, in order
    (a page message as its rows, one observation each)."""
    channel = await broker._connection.channel()  # type: ignore[union-attr]
    received: list[Message] = []
    try:
        queue = await channel.get_queue(topology.ingest_queue.name, ensure=False)
        seen = 0
        async with asyncio.timeout(wait_s), queue.iterator() as incoming:
            async for message in incoming:
                parsed = listings_message_adapter.validate_json(message.body)
                await message.ack()
                received.extend(observations_in(parsed) or [parsed])  # type: ignore[list-item]
                if isinstance(parsed, CensusCompleted):
                    seen += 1
                    if seen == censuses:
                        break
    finally:
        await channel.close()
    return received


async def sim_market(base_url: str) -> dict[str, Any]:
    """The simulator's whole market (the simulator runs in this loop: never block it)."""
    async with httpx.AsyncClient(base_url=base_url) as client:
        answer = await client.get("/_simulator/market")
        answer.raise_for_status()
        market: dict[str, Any] = answer.json()
        return market


def observations(messages: list[Message]) -> list[ListingObserved]:
    return [m for m in messages if isinstance(m, ListingObserved)]


def census_views(messages: list[Message]) -> dict[tuple[str, str], Any]:
    views = {}
    for message in messages:
        if isinstance(message, CensusCompleted):
            for view in message.views:
                views[(view.asset.value, view.status.value)] = view
    return views


def as_market_entry(observation: ListingObserved) -> dict[str, Any]:
    """An observation in the shape of the simulator's ``/_simulator/market`` listings."""
    return {
        "asset": observation.asset.value,
        "slug": observation.slug,
        "title": observation.title,
        "status": observation.status.value,
        "price_ton": observation.price_ton,
        "price_usd": observation.price_usd,
        "ton_usd_rate": observation.ton_usd_rate,
        "ends_at": observation.ends_at.isoformat() if observation.ends_at else None,
        "sold_at": observation.sold_at.isoformat() if observation.sold_at else None,
        "url": observation.url,
    }


def market_entry(listing: dict[str, Any]) -> dict[str, Any]:
    fields = ("asset", "slug", "title", "status", "ends_at", "sold_at", "url")
    return {
        **{key: listing[key] for key in fields},
        "price_ton": Decimal(listing["price_ton"]),
        "price_usd": Decimal(listing["price_usd"]),
        "ton_usd_rate": Decimal(listing["ton_usd_rate"]),
    }


def rows_per_view(listings: list[dict[str, Any]]) -> Counter[tuple[str, str]]:
    return Counter((x["asset"], x["status"]) for x in listings)
