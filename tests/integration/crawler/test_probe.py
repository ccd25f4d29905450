"""``fragmenty-crawler probe``: the drift canary passes on the simulator and fails, naming the
page and the reason, once the simulator's markup changes."""

import asyncio
import os
import sys
from datetime import UTC, datetime

import httpx

from fragmenty_crawler.probe import run_probe
from fragmenty_crawler.settings import CrawlerSettings
from fragmenty_simulator.app import SimulatorConfig
from fragmenty_simulator.server import build_simulator, running_simulator


async def test_probe_reads_every_view_both_api_shapes_and_an_item_page_per_status() -> None:
    simulator = build_simulator(
        200, 4, config=SimulatorConfig(page_size=30, seed=4), epoch=datetime(2026, 4, 1, tzinfo=UTC)
    )
    async with running_simulator(simulator) as site:
        report = await run_probe(CrawlerSettings(fragment_url=site.base_url, crawl_rate=100))

    assert report.ok, [line.render() for line in report.lines]
    shapes = [line.shape for line in report.lines]
    assert shapes == ["listing page"] * 6 + ["search answer", "search part"] + ["item page"] * 3
    items = [line for line in report.lines if line.shape == "item page"]
    assert [line.read.split(",")[0] for line in items] == ["auction", "sale", "sold"]
    assert "bid step" in items[0].read
    assert "(5%)" in items[0].read
    assert "owner" in items[2].read
    assert "sold 20" in items[2].read


async def test_probe_fails_on_the_markup_change_naming_page_shape_and_reason() -> None:
    simulator = build_simulator(60, 2, config=SimulatorConfig(page_size=500, seed=2))
    simulator.faults.markup_change = True
    async with running_simulator(simulator) as site:
        report = await run_probe(CrawlerSettings(fragment_url=site.base_url, crawl_rate=100))

    assert not report.ok
    first = report.lines[0]
    assert not first.ok
    rendered = first.render()
    assert rendered.startswith(f"FAIL  listing page   {site.base_url}/numbers?")
    assert "missing_price: expected a listing page" in rendered
    assert "no TON price (td.thin-last-col div.table-cell-value.icon-ton)" in rendered


async def test_the_probe_command_exits_0_then_1_after_the_markup_changes() -> None:
    simulator = build_simulator(40, 3, config=SimulatorConfig(page_size=500, seed=3))
    async with running_simulator(simulator) as site:

        async def probe() -> tuple[int, str]:
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "fragmenty_crawler", "probe", "--url", site.base_url,
                "--rate", "100",
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                env={**os.environ, "FRAGMENTY_LOG_LEVEL": "WARNING"},
            )  # fmt: skip
            out, _ = await process.communicate()
            return process.returncode or 0, out.decode()

        healthy = await probe()
        async with httpx.AsyncClient(base_url=site.base_url) as client:
            (
                await client.post("/_simulator/faults", json={"markup_change": True})
            ).raise_for_status()
        drifted = await probe()

    assert healthy[0] == 0, healthy[1]
    assert healthy[1].rstrip().endswith("10 pages, no drift seen")  # no cursor: no part
    assert drifted[0] == 1
    assert "FAIL  listing page" in drifted[1]
    assert "pages FAILED" in drifted[1]
