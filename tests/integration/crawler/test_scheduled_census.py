"""Censuses through the budget scheduler (``run --every``): heads, census and item pages share
one polite budget; the census still yields exactly the market with one complete
``CensusCompleted`` per view; sold views are read incrementally after a full pass."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from faststream.rabbit import RabbitBroker

from fragmenty_crawler.census import CensusReport
from fragmenty_crawler.main import build_runner
from fragmenty_crawler.metrics import CrawlerMetrics
from fragmenty_crawler.settings import CrawlerSettings
from fragmenty_shared.contracts import CensusCompleted, CensusView
from fragmenty_shared.settings import Settings
from fragmenty_shared.topology import Topology
from fragmenty_simulator import market as simulator_market
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
    sim_market,
)

PAGE_SIZE = 25


def _scheduled_settings(settings: Settings, base_url: str) -> CrawlerSettings:
    # Polite (the gate spaces requests), but fast enough for a test.
    return crawler_settings(
        settings,
        base_url,
        politeness=True,
        crawl_rate=100,
        head_period_s=0.2,
        ending_head_period_s=0.2,
        item_pages="changed",
        item_page_cap=10,
    )


def _heads_read(metrics: CrawlerMetrics) -> float:
    return sum(
        sample.value
        for family in metrics.registry.collect()
        if family.name == "fragmenty_crawler_pages"
        for sample in family.samples
        if sample.name.endswith("_total") and sample.labels.get("kind") == "head"
    )


async def test_a_scheduled_census_reads_heads_and_still_yields_exactly_the_market(
    settings: Settings, topology: Topology, broker: RabbitBroker
) -> None:
    config = SimulatorConfig(page_size=PAGE_SIZE, history_page_size=2, seed=8)
    simulator = build_simulator(200, 8, config=config, epoch=datetime(2026, 4, 1, tzinfo=UTC))
    metrics = CrawlerMetrics()
    async with running_simulator(simulator) as site:
        market = await sim_market(site.base_url)
        # Sold views read in full every time, so the second census is the whole market too.
        crawl = _scheduled_settings(settings, site.base_url).model_copy(
            update={"sold_full_sweep_s": 0.0}
        )
        runner = build_runner(crawl, broker, metrics, scheduled=True)
        first = await runner.run()
        # Nothing was known before the first census: it read the market without heads.
        assert _heads_read(metrics) == 0
        report = await runner.run()

    messages = await drain(broker, topology, censuses=12)
    listings = market["listings"]
    assert first.complete
    assert report.complete
    assert report.rows == len(listings)
    # Heads re-read the same listings: the last word on each listing is the market's.
    latest = {(o.asset.value, o.slug): o for o in observations(messages)}
    by_key = {(x["asset"], x["slug"]): x for x in listings}
    assert set(latest) == set(by_key)
    for key, observation in latest.items():
        assert as_market_entry(observation) == market_entry(by_key[key])
    second = [m for m in messages if getattr(m, "crawl_id", None) == report.crawl_id]
    views = census_views(second)
    expected_rows = rows_per_view(listings)
    assert {key: (view.complete, view.rows) for key, view in views.items()} == {
        key: (True, rows) for key, rows in expected_rows.items()
    }
    assert _heads_read(metrics) >= 2  # the two ending-soonest feeds at least once


@dataclass
class TwoCensuses:
    """Two scheduled censuses of one simulated market, with an auction ended between them."""

    first: CensusReport
    second: CensusReport
    ended: dict[str, Any]  # the simulator's entry of the auction that became a sale
    messages: list[Any]

    def sold_views(self) -> dict[tuple[str, str], CensusView]:
        """(crawl id, asset) -> the sold view's report."""
        return {
            (census.crawl_id, view.asset.value): view
            for census in self.messages
            if isinstance(census, CensusCompleted)
            for view in census.views
            if view.status.value == "sold"
        }

    def second_saw_the_sale(self) -> bool:
        return any(
            o.crawl_id == self.second.crawl_id
            and o.slug == self.ended["slug"]
            and o.status.value == "sold"
            for o in observations(self.messages)
        )


async def two_censuses(
    settings: Settings,
    topology: Topology,
    broker: RabbitBroker,
    between: Callable[[], None] = lambda: None,
) -> TwoCensuses:
    """A full census, then ``between()``, an auction ending, and a second census."""
    config = SimulatorConfig(page_size=PAGE_SIZE, seed=9)
    simulator = build_simulator(400, 9, config=config, epoch=datetime(2026, 4, 1, tzinfo=UTC))
    async with running_simulator(simulator) as site:
        crawl = _scheduled_settings(settings, site.base_url)
        runner = build_runner(crawl, broker, CrawlerMetrics(), scheduled=True)
        first = await runner.run()
        between()
        market = await sim_market(site.base_url)
        auction = next(x for x in market["listings"] if x["status"] == "auction")
        async with httpx.AsyncClient(base_url=site.base_url) as client:
            ended = await client.post(
                f"/_simulator/listings/{auction['asset']}/{auction['slug']}/end-auction"
            )
            ended.raise_for_status()
        second = await runner.run()
    return TwoCensuses(first, second, auction, await drain(broker, topology, censuses=12))


async def test_after_a_full_pass_sold_views_are_read_until_known_and_new_sales_are_caught(
    settings: Settings, topology: Topology, broker: RabbitBroker
) -> None:
    run = await two_censuses(settings, topology, broker)
    sold_views = run.sold_views()
    for asset in ("number", "username"):
        full, incremental = (
            sold_views[(run.first.crawl_id, asset)],
            sold_views[(run.second.crawl_id, asset)],
        )
        assert full.complete
        assert incremental.complete
        assert full.pages > 1
        assert incremental.pages == 1  # the newest page ends in a run of known sales
    assert run.second_saw_the_sale(), "the new sale was not read by the incremental pass"


async def test_a_sold_view_that_is_not_newest_first_is_read_to_the_end(
    settings: Settings, topology: Topology, broker: RabbitBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If Fragment ever served sold views under ``sort=listed`` in another order, a run of known
    sales at the top would say nothing about the rows below it: the pass must read on."""

    def order_sold_views_by_price() -> None:  # "Recently listed" of a sold view, from now on
        monkeypatch.setitem(simulator_market._SORT_KEYS, "listed", lambda x: (-x.price_ton, x.slug))

    run = await two_censuses(settings, topology, broker, between=order_sold_views_by_price)
    sold_views = run.sold_views()
    for asset in ("number", "username"):
        full = sold_views[(run.first.crawl_id, asset)]
        assert full.pages > 1
        assert sold_views[(run.second.crawl_id, asset)].pages == full.pages
    assert run.second_saw_the_sale(), "the new sale was not read"
