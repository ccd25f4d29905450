"""Fault tests against the simulator: 429 storms are waited out; broken pages never publish
half-filled records, make their view incomplete, and make ``run --once`` exit non-zero."""

import asyncio
import os
import sys

from faststream.rabbit import RabbitBroker

from fragmenty_crawler.metrics import CrawlerMetrics
from fragmenty_shared.settings import Settings
from fragmenty_shared.topology import Topology
from fragmenty_simulator.app import SimulatorConfig
from fragmenty_simulator.faults import Faults
from fragmenty_simulator.server import build_simulator, running_simulator
from tests.integration.crawler.support import (
    as_market_entry,
    census_views,
    crawler_settings,
    drain,
    market_entry,
    observations,
    run_census,
    sim_market,
)

CONFIG = SimulatorConfig(page_size=25, seed=4)


async def test_a_429_storm_and_bad_gateways_are_waited_out(
    settings: Settings, topology: Topology, broker: RabbitBroker
) -> None:
    faults = Faults(rate_limit=10, retry_after=1, server_errors=3)
    simulator = build_simulator(120, 4, config=CONFIG, faults=faults)
    metrics = CrawlerMetrics()
    async with running_simulator(simulator) as site:
        market = await sim_market(site.base_url)
        report = await run_census(crawler_settings(settings, site.base_url), broker, metrics)

    messages = await drain(broker, topology, censuses=6)
    assert report.complete
    assert (simulator.faults.rate_limit, simulator.faults.server_errors) == (0, 0)
    assert metrics.retries.labels("429")._value.get() == 10
    assert metrics.retries.labels("502")._value.get() == 3
    assert sorted(as_market_entry(o)["slug"] for o in observations(messages)) == sorted(
        x["slug"] for x in market["listings"]
    )
    assert all(view.complete for view in census_views(messages).values())


async def test_a_truncated_page_makes_its_view_incomplete_and_publishes_nothing_half_filled(
    settings: Settings, topology: Topology, broker: RabbitBroker
) -> None:
    simulator = build_simulator(120, 4, config=CONFIG, faults=Faults(truncate=1))
    async with running_simulator(simulator) as site:
        market = await sim_market(site.base_url)
        report = await run_census(crawler_settings(settings, site.base_url), broker)

    messages = await drain(broker, topology, censuses=6)
    views = census_views(messages)
    incomplete = [view for view in views.values() if not view.complete]
    assert not report.complete
    assert len(incomplete) == 1
    assert incomplete[0].reason is not None
    assert "truncated" in incomplete[0].reason
    # Every record that did go out is whole and true to the market.
    by_key = {(x["asset"], x["slug"]): x for x in market["listings"]}
    seen = observations(messages)
    assert seen
    for observation in seen:
        assert as_market_entry(observation) == market_entry(
            by_key[(observation.asset.value, observation.slug)]
        )
    assert sum(view.rows for view in views.values()) == len(seen) < len(market["listings"])


async def test_a_view_whose_pages_keep_failing_is_incomplete_with_the_http_status(
    settings: Settings, topology: Topology, broker: RabbitBroker
) -> None:
    simulator = build_simulator(60, 4, config=CONFIG, faults=Faults(server_errors=1000))
    async with running_simulator(simulator) as site:
        report = await run_census(
            crawler_settings(settings, site.base_url, max_retries=1, max_backoff_s=0.1), broker
        )

    messages = await drain(broker, topology, censuses=6)
    assert observations(messages) == []
    assert not report.complete
    reasons = {view.reason for view in census_views(messages).values()}
    assert all(reason is not None and reason.startswith("http_502") for reason in reasons)


async def _run_once(settings: Settings, base_url: str) -> int:
    env = {
        **os.environ,
        "FRAGMENTY_NAMESPACE": settings.namespace,
        "FRAGMENTY_MONGODB_DATABASE": settings.mongodb_database,
        "FRAGMENTY_RABBITMQ_URL": settings.rabbitmq_url,
        "FRAGMENTY_FRAGMENT_URL": base_url,
        "FRAGMENTY_PRIOR_STATE": "memory",
        "FRAGMENTY_ITEM_PAGES": "none",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "fragmenty_crawler", "run", "--once", "--no-politeness", env=env
    )
    return await asyncio.wait_for(process.wait(), 120)


async def test_run_once_exits_0_on_a_complete_census_and_1_after_a_markup_change(
    settings: Settings, topology: Topology, broker: RabbitBroker
) -> None:
    simulator = build_simulator(60, 4, config=CONFIG)
    async with running_simulator(simulator) as site:
        healthy = await _run_once(settings, site.base_url)
        first = await drain(broker, topology, censuses=6)
        simulator.faults.markup_change = True
        changed = await _run_once(settings, site.base_url)
        second = await drain(broker, topology, censuses=6)

    assert healthy == 0
    assert len(observations(first)) == 60
    assert all(view.complete for view in census_views(first).values())
    assert changed == 1
    assert observations(second) == []  # no row could be read whole, so none was published
    views = census_views(second)
    assert len(views) == 6
    assert all(
        not view.complete and "missing_price" in (view.reason or "") for view in views.values()
    )
