"""``run --every`` serves health and metrics and stops cleanly; a polite census is complete too."""

import asyncio
import os
import re
import signal
import sys

import httpx
from faststream.rabbit import RabbitBroker

from fragmenty_shared.ports import free_port
from fragmenty_shared.settings import Settings
from fragmenty_shared.topology import Topology
from fragmenty_simulator.app import SimulatorConfig
from fragmenty_simulator.server import build_simulator, running_simulator
from tests.integration.crawler.support import (
    census_views,
    crawler_settings,
    drain,
    observations,
    run_census,
)


async def test_run_every_serves_health_readiness_and_metrics_and_stops_on_sigterm(
    settings: Settings, topology: Topology, broker: RabbitBroker
) -> None:
    simulator = build_simulator(40, 2, config=SimulatorConfig(page_size=500, seed=2))
    port = free_port()
    env = {
        **os.environ,
        "FRAGMENTY_NAMESPACE": settings.namespace,
        "FRAGMENTY_MONGODB_DATABASE": settings.mongodb_database,
        "FRAGMENTY_RABBITMQ_URL": settings.rabbitmq_url,
        "FRAGMENTY_CRAWLER_PORT": str(port),
        "FRAGMENTY_ITEM_PAGES": "none",
    }
    async with running_simulator(simulator) as site:
        env["FRAGMENTY_FRAGMENT_URL"] = site.base_url
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "fragmenty_crawler",
            "run",
            "--every",
            "2",
            "--no-politeness",
            env=env,
        )
        try:
            metrics = await _metrics_after_a_census(f"http://127.0.0.1:{port}")
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
                health = await client.get("/healthz")
                ready = await client.get("/readyz")
        finally:
            process.send_signal(signal.SIGTERM)
            code = await asyncio.wait_for(process.wait(), 60)

    assert code == 0
    assert health.json() == {"status": "ok"}
    assert ready.status_code == 200, ready.text
    assert set(ready.json()["checks"]) == {"rabbitmq", "mongodb"}
    assert 'fragmenty_crawler_censuses_total{outcome="complete"}' in metrics
    assert 'fragmenty_crawler_view_complete{asset="number",status="auction"} 1.0' in metrics
    assert "fragmenty_crawler_pages_total" in metrics
    assert "fragmenty_crawler_published_messages_total" in metrics
    messages = await drain(broker, topology, censuses=6)
    assert len(observations(messages)) == 40  # the first census, in full


async def _metrics_after_a_census(base_url: str) -> str:
    async with asyncio.timeout(90), httpx.AsyncClient(base_url=base_url) as client:
        while True:
            try:
                text = (await client.get("/metrics")).text
            except httpx.TransportError:
                text = ""
            # Any count: with a short interval, several censuses may pass between two polls.
            if re.search(r'fragmenty_crawler_censuses_total\{outcome="complete"\} [1-9]', text):
                return text
            await asyncio.sleep(0.3)


async def test_a_polite_census_is_complete_and_exact(
    settings: Settings, topology: Topology, broker: RabbitBroker
) -> None:
    simulator = build_simulator(30, 6, config=SimulatorConfig(page_size=10, seed=6))
    async with running_simulator(simulator) as site:
        polite = crawler_settings(settings, site.base_url, politeness=True, crawl_rate=20.0)
        report = await run_census(polite, broker)

    messages = await drain(broker, topology, censuses=6)
    assert report.complete
    assert len(observations(messages)) == 30
    assert all(view.complete for view in census_views(messages).values())
