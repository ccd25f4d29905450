"""A politeness-off census of the simulator, through the real RabbitMQ, is exactly its market."""

import math
from datetime import UTC, datetime

import httpx
from faststream.rabbit import RabbitBroker

from fragmenty_crawler.main import build_runner
from fragmenty_crawler.metrics import CrawlerMetrics
from fragmenty_shared.contracts import CensusCompleted, ListingObserved
from fragmenty_shared.settings import Settings
from fragmenty_shared.topology import Topology
from fragmenty_simulator.app import SimulatorConfig
from fragmenty_simulator.server import build_simulator, running_simulator
from tests.integration.crawler.support import (
    as_market_entry,
    census_views,
    crawler_settings,
    drain,
    market_entry,
    observations,
    rows_per_view,
    run_census,
    sim_market,
)

PAGE_SIZE = 40
ITEM_PAGES = 25


async def test_every_listing_of_every_view_arrives_with_matching_fields_and_a_complete_census(
    settings: Settings, topology: Topology, broker: RabbitBroker
) -> None:
    config = SimulatorConfig(page_size=PAGE_SIZE, history_page_size=2, seed=11)
    simulator = build_simulator(300, 11, config=config, epoch=datetime(2026, 4, 1, tzinfo=UTC))
    async with running_simulator(simulator) as site:
        market = await sim_market(site.base_url)
        crawl = crawler_settings(
            settings, site.base_url, item_pages="all", item_page_cap=ITEM_PAGES
        )
        report = await run_census(crawl, broker)

    messages = await drain(broker, topology, censuses=6)
    seen = observations(messages)
    listings = market["listings"]

    # Exactly the market from the listing pages: nothing missing, nothing twice, every field
    # equal. Each row goes out with its page; an item page sends its row again with details.
    assert report.complete
    assert report.rows == len(listings) == 300
    from_pages = [o for o in seen if o.details is None]
    assert len(from_pages) == len(listings)
    by_key = {(x["asset"], x["slug"]): x for x in listings}
    assert {(o.asset.value, o.slug) for o in from_pages} == set(by_key)
    for observation in seen:
        assert as_market_entry(observation) == market_entry(
            by_key[(observation.asset.value, observation.slug)]
        )
    assert {o.crawl_id for o in seen} == {report.crawl_id}

    # One complete CensusCompleted per view, with the view's rows and pages.
    views = census_views(messages)
    expected_rows = rows_per_view(listings)
    assert set(views) == set(expected_rows)
    for key, view in views.items():
        assert view.complete
        assert view.reason is None
        assert view.rows == expected_rows[key]
        assert view.pages == math.ceil(expected_rows[key] / PAGE_SIZE)

    # A view's census comes after every one of its observations on the queue.
    for index, message in enumerate(messages):
        if isinstance(message, CensusCompleted):
            view = message.views[0]
            later = [
                m for m in messages[index + 1 :]
                if isinstance(m, ListingObserved) and (m.asset, m.status) == (view.asset, view.status)
            ]  # fmt: skip
            assert later == []

    # Item pages, with their histories paged through "Show more".
    detailed = [o for o in seen if o.details is not None]
    assert len(detailed) == ITEM_PAGES
    assert len({(o.asset, o.slug) for o in detailed}) == ITEM_PAGES
    assert len(seen) == len(listings) + ITEM_PAGES
    for observation in detailed:
        truth = by_key[(observation.asset.value, observation.slug)]
        assert observation.details is not None
        assert len(observation.details.bid_history) == truth["bids"]
        assert len(observation.details.ownership_history) == truth["sales"]
        if truth["status"] == "auction" and truth["highest_bid_ton"] is not None:
            assert str(observation.details.highest_bid_ton) == truth["highest_bid_ton"]
        if truth["status"] == "sold":
            assert observation.details.owner == truth["owner"]


async def test_a_second_census_fetches_item_pages_only_for_what_changed(
    settings: Settings, topology: Topology, broker: RabbitBroker
) -> None:
    simulator = build_simulator(60, 3, config=SimulatorConfig(page_size=500, seed=3))
    async with running_simulator(simulator) as site:
        crawl = crawler_settings(settings, site.base_url, item_pages="changed", item_page_cap=100)
        runner = build_runner(crawl, broker, CrawlerMetrics())
        first = await runner.run()
        market = await sim_market(site.base_url)
        sale = next(x for x in market["listings"] if x["status"] == "sale")
        async with httpx.AsyncClient(base_url=site.base_url) as client:
            moved = await client.post(
                f"/_simulator/listings/{sale['asset']}/{sale['slug']}", json={"price_ton": "4321"}
            )
            moved.raise_for_status()
        second = await runner.run()

    messages = await drain(broker, topology, censuses=12)
    assert first.complete
    assert second.complete
    assert first.item_pages == 60
    assert second.item_pages == 1
    detailed_second = [
        o for o in observations(messages) if o.crawl_id == second.crawl_id and o.details
    ]
    assert [(o.slug, str(o.price_ton)) for o in detailed_second] == [(sale["slug"], "4321")]
