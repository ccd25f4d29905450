"""One listing through every service, as separate processes on the real broker and database.

Fragment simulator -> crawler -> RabbitMQ -> ingest -> database -> REST, and ingest -> events
exchange -> notifier -> a subscribed WebSocket client. Then a price moves in the simulator, and
the change travels the same way; then the listing leaves the market and is delisted. Each hop is
asserted on its own, so a failure names the hop.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import aio_pika
import httpx
import pytest
from faststream.rabbit import RabbitBroker
from pymongo.asynchronous.database import AsyncDatabase
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Origin

from fragmenty_shared.broker import declare_listings_topology
from fragmenty_shared.contracts import ListingObserved, listings_message_adapter, observations_in
from fragmenty_shared.money import to_nanoton
from fragmenty_shared.settings import Settings
from fragmenty_shared.storage import Collections, listing_id
from fragmenty_shared.topology import Topology
from tests.support.private_servers import REPO_ROOT, free_port
from tests.support.processes import ServiceProcess, running, service_environment, wait_until

pytestmark = pytest.mark.slow

SIMULATED_LISTINGS = 24


@pytest.fixture
def e2e_settings(settings: Settings) -> Settings:
    ports = {name: free_port() for name in ("api_port", "notifier_port", "ingest_port")}
    return settings.model_copy(update=ports)


@pytest.fixture
async def tap(
    broker: RabbitBroker, topology: Topology
) -> AsyncIterator[aio_pika.abc.AbstractQueue]:
    """A queue of the test's own on the listings exchange: what the crawler really published."""
    await declare_listings_topology(broker, topology)
    channel = await broker._connection.channel()  # type: ignore[union-attr]
    queue = await channel.declare_queue(exclusive=True, auto_delete=True)
    await queue.bind(topology.listings_exchange.name, routing_key="#")
    yield queue
    await channel.close()


async def test_a_listing_and_its_price_change_reach_rest_and_a_websocket(
    e2e_settings: Settings,
    mongo_db: AsyncDatabase[dict[str, Any]],
    tap: aio_pika.abc.AbstractQueue,
    tmp_path: Path,
) -> None:
    simulator_port = free_port()
    simulator_url = f"http://127.0.0.1:{simulator_port}"
    env = service_environment(
        e2e_settings,
        FRAGMENTY_FRAGMENT_URL=simulator_url,
        FRAGMENTY_NOTIFIER_ALLOWED_ORIGINS='["http://e2e.test"]',
        # The api serves from a snapshot it refreshes; refresh often so the test need not wait.
        FRAGMENTY_SNAPSHOT_REFRESH_SECONDS="0.5",
    )
    api_url = f"http://127.0.0.1:{e2e_settings.api_port}"
    notifier_url = f"http://127.0.0.1:{e2e_settings.notifier_port}"

    def service(name: str, *args: str) -> ServiceProcess:
        return ServiceProcess(name, f"fragmenty_{name}", args, env, tmp_path)

    simulator = service(
        "simulator", "--port", str(simulator_port), "--listings", str(SIMULATED_LISTINGS)
    )
    ingest, api, notifier = service("ingest"), service("api"), service("notifier")
    with running(simulator, ingest, api, notifier):
        await simulator.wait_ready(f"{simulator_url}/_simulator/market")
        await ingest.wait_ready(f"http://127.0.0.1:{e2e_settings.ingest_port}/readyz")
        await api.wait_ready(f"{api_url}/readyz")
        await notifier.wait_ready(f"{notifier_url}/readyz")

        async with httpx.AsyncClient(timeout=10) as http:
            target = await a_number_on_auction(http, simulator_url)
            slug, first_price = target["slug"], Decimal(target["price_ton"])

            async with connect(
                f"ws://127.0.0.1:{e2e_settings.notifier_port}/ws", origin=Origin("http://e2e.test")
            ) as socket:
                await subscribe(socket, {"slugs": [slug]})

                # First census: the listing appears.
                await asyncio.to_thread(crawl, env, tmp_path)  # the socket answers pings meanwhile

                # Hop 1: the crawler published exactly what the simulator shows.
                observed = await observed_on_tap(tap, slug)
                assert observed.price_ton == first_price
                assert observed.status.value == "auction"

                # Hop 2: ingest stored it under its deterministic id, price exact in nanoTON.
                stored = await stored_listing(mongo_db, slug, first_price)
                assert stored["title"] == target["title"]

                # Hop 3: the REST API serves it.
                listed = await rest_listing(http, api_url, slug, first_price)
                assert listed["title"] == target["title"]

                # Hop 4: the subscribed WebSocket client is told it was listed.
                event = await next_event(socket)
                assert (event["type"], event["slug"]) == ("listed", slug)
                assert Decimal(event["new"]["price_ton"]) == first_price

                # The price moves on Fragment; the next census carries the change everywhere.
                new_price = first_price * 2
                changed = await http.post(
                    f"{simulator_url}/_simulator/listings/number/{slug}",
                    json={"price_ton": str(new_price)},
                )
                assert changed.status_code == 200, changed.text
                await asyncio.to_thread(crawl, env, tmp_path)  # the socket answers pings meanwhile

                assert (await observed_on_tap(tap, slug)).price_ton == new_price
                await stored_listing(mongo_db, slug, new_price)
                await rest_listing(http, api_url, slug, new_price)
                event = await next_event(socket)
                assert (event["type"], event["slug"]) == ("price_changed", slug)
                assert Decimal(event["old"]["price_ton"]) == first_price
                assert Decimal(event["new"]["price_ton"]) == new_price
                assert event["change_pct"] == pytest.approx(100.0)

                # Ingest stamps each event as it publishes it: the notifier measures its
                # fan-out from that moment, not from its own receipt.
                metrics = (await http.get(f"{notifier_url}/metrics")).text
                assert fanout_count(metrics, "published") >= 2
                assert fanout_count(metrics, "received") == 0

                detail = (await http.get(f"{api_url}/api/v1/listings/number/{slug}")).json()
                assert [point["type"] for point in detail["history"]] == [
                    "listed",
                    "price_changed",
                ]

                # The listing leaves Fragment; a complete census (reported view by view) delists
                # it, and only it.
                withdrawn = await http.delete(f"{simulator_url}/_simulator/listings/number/{slug}")
                assert withdrawn.status_code == 200, withdrawn.text
                await asyncio.to_thread(crawl, env, tmp_path)  # the socket answers pings meanwhile
                event = await next_event(socket)
                assert (event["type"], event["slug"]) == ("delisted", slug)
                delisted = await mongo_db[Collections.LISTINGS].count_documents(
                    {"delisted_at": {"$ne": None}}
                )
                assert delisted == 1


def fanout_count(metrics: str, origin: str) -> float:
    """Frames counted by the notifier's fan-out latency histogram for one origin."""
    prefix = f'fragmenty_notifier_fanout_latency_seconds_count{{origin="{origin}"}} '
    lines = [line for line in metrics.splitlines() if line.startswith(prefix)]
    assert len(lines) == 1, f"no {prefix.strip()} in the notifier's metrics"
    return float(lines[0].removeprefix(prefix))


async def a_number_on_auction(http: httpx.AsyncClient, simulator_url: str) -> dict[str, Any]:
    """The simulator's entry of the first number on auction (slug, title, price_ton ...)."""
    market = (await http.get(f"{simulator_url}/_simulator/market")).json()
    target: dict[str, Any] = next(
        item
        for item in market["listings"]
        if item["asset"] == "number" and item["status"] == "auction"
    )
    return target


def crawl(env: dict[str, str], log_dir: Path, *, complete: bool = True) -> None:
    """One politeness-off census of the simulator; every view must be complete (exit 0), or,
    with ``complete=False``, the census must report itself incomplete (exit 1)."""
    with (log_dir / "crawler.log").open("ab") as log:
        result = subprocess.run(
            [sys.executable, "-m", "fragmenty_crawler", "run", "--once", "--no-politeness"],
            env=env,
            cwd=REPO_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            timeout=120,
            check=False,
        )
    tail = (log_dir / "crawler.log").read_text(errors="replace")[-3000:]
    if complete:
        assert result.returncode == 0, f"crawler census incomplete:\n{tail}"
    else:
        assert result.returncode == 1, f"crawler census not reported incomplete:\n{tail}"


async def subscribe(socket: ClientConnection, filter_: dict[str, Any]) -> None:
    await socket.send(json.dumps({"action": "subscribe", "id": "s1", "filter": filter_}))
    reply = json.loads(await asyncio.wait_for(socket.recv(), 10))
    assert reply == {"type": "subscribed", "id": "s1"}, reply


async def next_event(socket: ClientConnection) -> dict[str, Any]:
    """The next event frame (keepalive and other frames are skipped)."""
    async with asyncio.timeout(30):
        while True:
            frame = json.loads(await socket.recv())
            if frame.get("type") == "event":
                assert frame["subscription"] == "s1"
                event: dict[str, Any] = frame["event"]
                return event


async def observed_on_tap(tap: aio_pika.abc.AbstractQueue, slug: str) -> ListingObserved:
    """The latest observation of ``slug`` the crawler published (drains the tap)."""
    latest: ListingObserved | None = None
    async with asyncio.timeout(30):
        while True:
            message = await tap.get(fail=False, no_ack=True)
            if message is None:
                if latest is not None:
                    return latest
                await asyncio.sleep(0.1)
                continue
            parsed = listings_message_adapter.validate_json(message.body)
            for observation in observations_in(parsed):
                if observation.slug == slug:
                    latest = observation


async def stored_listing(
    db: AsyncDatabase[dict[str, Any]], slug: str, price: Decimal
) -> dict[str, Any]:
    found: dict[str, Any] = {}

    async def stored() -> bool:
        document = await db[Collections.LISTINGS].find_one({"_id": listing_id("number", slug)})
        if document is not None and document["price_nanoton"] == to_nanoton(price):
            found.update(document)
            return True
        return False

    await wait_until(stored, timeout_s=30, what=f"listing {slug} stored at {price} TON")
    return found


async def rest_listing(
    http: httpx.AsyncClient, api_url: str, slug: str, price: Decimal
) -> dict[str, Any]:
    found: dict[str, Any] = {}

    async def served() -> bool:
        response = await http.get(
            f"{api_url}/api/v1/listings", params={"asset": "number", "q": slug}
        )
        assert response.status_code == 200, response.text
        for item in response.json()["items"]:
            if item["slug"] == slug and Decimal(item["price_ton"]) == price:
                found.update(item)
                return True
        return False

    await wait_until(served, timeout_s=30, what=f"REST listing {slug} at {price} TON")
    return found
