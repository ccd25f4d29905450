"""A deal, end to end: the simulator lists a number far under its value, and a WebSocket
subscription with ``min_discount_pct`` is told; a listing priced over its value is not.

Simulator -> crawler (item pages: ownership histories with sale prices) -> ingest (stores the
sales, fits its valuation model in a worker thread, puts the fair value on each event) ->
events exchange -> notifier (``min_discount_pct`` filter) -> WebSocket client. Separate
processes on the real broker and database.
"""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Origin

from fragmenty_shared.settings import Settings
from tests.e2e.test_listing_flows_end_to_end import crawl
from tests.support.private_servers import free_port
from tests.support.processes import ServiceProcess, running, service_environment, wait_until

pytestmark = pytest.mark.slow

SIMULATED_LISTINGS = 150  # enough sales of numbers (20+) for a model, small enough to be quick
DEAL_FILTER = {"assets": ["number"], "min_discount_pct": 50}


@pytest.fixture
def e2e_settings(settings: Settings) -> Settings:
    ports = {name: free_port() for name in ("api_port", "notifier_port", "ingest_port")}
    return settings.model_copy(update=ports)


async def test_a_number_listed_far_under_its_value_reaches_a_deal_subscription(
    e2e_settings: Settings, tmp_path: Path
) -> None:
    simulator_port = free_port()
    simulator_url = f"http://127.0.0.1:{simulator_port}"
    env = service_environment(
        e2e_settings,
        FRAGMENTY_FRAGMENT_URL=simulator_url,
        FRAGMENTY_NOTIFIER_ALLOWED_ORIGINS='["http://e2e.test"]',
        FRAGMENTY_ITEM_PAGE_CAP="1000",  # every item page: the sales the model learns from
        FRAGMENTY_INGEST_VALUATION_REFIT_SECONDS="1",
    )
    ingest_url = f"http://127.0.0.1:{e2e_settings.ingest_port}"
    notifier_url = f"http://127.0.0.1:{e2e_settings.notifier_port}"

    def service(name: str, *args: str) -> ServiceProcess:
        return ServiceProcess(name, f"fragmenty_{name}", args, env, tmp_path)

    simulator = service(
        "simulator", "--port", str(simulator_port), "--listings", str(SIMULATED_LISTINGS)
    )
    ingest, notifier = service("ingest"), service("notifier")
    with running(simulator, ingest, notifier):
        await simulator.wait_ready(f"{simulator_url}/_simulator/market")
        await ingest.wait_ready(f"{ingest_url}/readyz")
        await notifier.wait_ready(f"{notifier_url}/readyz")
        async with httpx.AsyncClient(timeout=10) as http:
            crawl(env, tmp_path)  # the market and its sales reach the database

            async def model_fitted() -> bool:
                return valuation_sales((await http.get(f"{ingest_url}/metrics")).text) >= 20

            await wait_until(model_fitted, timeout_s=60, what="ingest's first valuation fit")

            market = (await http.get(f"{simulator_url}/_simulator/market")).json()
            for_sale = [
                item
                for item in market["listings"]
                if item["asset"] == "number" and item["status"] == "sale"
            ]
            deal, dear = for_sale[0], for_sale[1]
            deal_price = (Decimal(deal["price_ton"]) / 20).quantize(Decimal(1)) or Decimal(1)
            dear_price = Decimal(dear["price_ton"]) * 3

            origin = Origin("http://e2e.test")
            async with (
                connect(f"ws://127.0.0.1:{e2e_settings.notifier_port}/ws", origin=origin) as deals,
                connect(f"ws://127.0.0.1:{e2e_settings.notifier_port}/ws", origin=origin) as both,
            ):
                await subscribe(deals, DEAL_FILTER)
                await subscribe(both, {"slugs": [deal["slug"], dear["slug"]]})
                for item, price in ((deal, deal_price), (dear, dear_price)):
                    moved = await http.post(
                        f"{simulator_url}/_simulator/listings/number/{item['slug']}",
                        json={"price_ton": str(price)},
                    )
                    assert moved.status_code == 200, moved.text
                crawl(env, tmp_path)

                # The unfiltered subscription sees both moves, each with its fair value.
                first, second = await next_event(both), await next_event(both)
                seen = {first["slug"]: first, second["slug"]: second}
                assert set(seen) == {deal["slug"], dear["slug"]}
                assert seen[dear["slug"]]["valuation"]["discount_pct"] < 0  # over its value

                # The deal subscription is told about the deal, with the estimate it beat.
                found = await next_event(deals)
                assert (found["type"], found["slug"]) == ("price_changed", deal["slug"])
                assert Decimal(found["new"]["price_ton"]) == deal_price
                valuation = found["valuation"]
                assert valuation["discount_pct"] >= 50
                assert Decimal(valuation["low_ton"]) <= Decimal(valuation["fair_value_ton"])
                assert Decimal(valuation["fair_value_ton"]) > deal_price * 2

                # ...and only about deals: nothing else is waiting for it.
                assert await frames_within(deals, seconds=1.0) == []


def valuation_sales(metrics: str) -> float:
    for line in metrics.splitlines():
        if line.startswith("fragmenty_ingest_valuation_sales "):
            return float(line.split()[1])
    return 0.0


async def subscribe(socket: ClientConnection, filter_: dict[str, Any]) -> None:
    await socket.send(json.dumps({"action": "subscribe", "id": "s1", "filter": filter_}))
    reply = json.loads(await asyncio.wait_for(socket.recv(), 10))
    assert reply == {"type": "subscribed", "id": "s1"}, reply


async def next_event(socket: ClientConnection) -> dict[str, Any]:
    async with asyncio.timeout(30):
        while True:
            frame = json.loads(await socket.recv())
            if frame.get("type") == "event":
                event: dict[str, Any] = frame["event"]
                return event


async def frames_within(socket: ClientConnection, *, seconds: float) -> list[dict[str, Any]]:
    """Event frames that arrive within ``seconds`` (keepalives skipped)."""
    frames: list[dict[str, Any]] = []
    try:
        async with asyncio.timeout(seconds):
            while True:
                frame = json.loads(await socket.recv())
                if frame.get("type") == "event":
                    frames.append(frame)
    except TimeoutError:
        return frames
