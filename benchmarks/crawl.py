"""Crawl benchmark: a politeness-off census of a 20,000-listing simulated market into RabbitMQ.

Prints one JSON line:

- ``census_rows_per_s``: rows per second of the census, from its first request to the last
  view's confirmed ``CensusCompleted`` (so it includes every publisher confirm);
- ``unpublished_census_rows_per_s``: the same census with a publisher that confirms at once
  (fetching and parsing only): the limit a crawl can approach;
- ``census_vs_unpublished`` = census / unpublished census (target >= 0.6: publishing may cost a
  census at most 40 % of its speed);
- ``raw_publish_per_s``: the same observations published again, in pages, by the same
  publisher with nothing else to do, and ``ratio`` = census / raw. This was the target before
  pages (schema version 2): with one message per row, publishing was what bounded a census.
  With one message per page, raw publishing is about twenty times faster than a census, so
  the ratio now says only how much headroom the broker leaves;
- every figure is the best of ``BENCH_ROUNDS`` (3) alternating rounds, with every round's
  figures alongside;
- ``parse_rows_per_s``: parsing alone, of one 500-row listing page.

The simulator runs as a separate process (as Fragment is a separate site); assumes
``scripts/infra.sh up`` (RabbitMQ on FRAGMENTY_RABBITMQ_URL). Progress goes to stderr.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path

import httpx

from fragmenty_crawler.metrics import CrawlerMetrics
from fragmenty_crawler.parsing.listing import parse_listing_page
from fragmenty_crawler.prior import MemoryPriorState
from fragmenty_crawler.publisher import ListingsPublisher
from fragmenty_crawler.runner import CensusRunner
from fragmenty_crawler.settings import CrawlerSettings
from fragmenty_crawler.views import ALL_VIEWS
from fragmenty_shared.broker import make_broker
from fragmenty_shared.contracts import CensusCompleted, ListingObserved, ListingStatus
from fragmenty_shared.topology import Topology

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root
from tests.support.broker_cleanup import delete_namespace_queues
from tests.support.private_servers import free_port

LISTINGS = int(os.environ.get("BENCH_LISTINGS", "20000"))
PAGE_ROWS = 500
TARGET_RATIO = 0.6
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))


def log(message: str) -> None:
    print(f"[crawl bench] {message}", file=sys.stderr, flush=True)


def start_simulator(port: int) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "fragmenty_simulator", "--port", str(port)]
    command += ["--listings", str(LISTINGS), "--seed", "1", "--page-size", str(PAGE_ROWS)]
    process = subprocess.Popen(command)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/_simulator/faults", timeout=1).raise_for_status()
            return process
        except httpx.HTTPError:
            time.sleep(0.2)
    process.terminate()
    raise RuntimeError("the simulator did not start")


def warm_simulator(base_url: str) -> None:
    """Fetch every page once, so the simulator has rendered each row before the census:
    the census then measures the crawler and the broker, not the simulator's templating."""
    for view in ALL_VIEWS:
        with httpx.Client(base_url=base_url, timeout=60) as client:
            page = client.get(view.page_url(base_url)).text
            api_hash = re.search(r"hash=([0-9a-f]+)", page)
            cursor = re.search(r'data-next-offset="([^"]+)"', page)
            while api_hash and cursor:
                answer = client.post(
                    f"/api?hash={api_hash.group(1)}", data=view.search_form(cursor.group(1))
                )
                cursor = re.search(r'data-next-offset=\\?"([^"\\]+)', answer.text)


def parse_rate(base_url: str) -> float:
    page = httpx.get(f"{base_url}/numbers", params={"filter": "auction"}, timeout=30).text
    rows = len(parse_listing_page(page, "bench", base_url, ListingStatus.AUCTION).rows)
    assert rows == PAGE_ROWS, f"expected a {PAGE_ROWS}-row page, got {rows}"
    rounds = 20
    started = time.perf_counter()
    for _ in range(rounds):
        parse_listing_page(page, "bench", base_url, ListingStatus.AUCTION)
    return rounds * rows / (time.perf_counter() - started)


async def queue_depth(broker: object, topology: Topology) -> int:
    channel = await broker._connection.channel()  # type: ignore[attr-defined]
    try:
        declared = await channel.declare_queue(topology.ingest_queue.name, passive=True)
        count: int = declared.declaration_result.message_count
        return count
    finally:
        await channel.close()


async def purge(broker: object, topology: Topology) -> None:
    channel = await broker._connection.channel()  # type: ignore[attr-defined]
    try:
        queue = await channel.get_queue(topology.ingest_queue.name, ensure=False)
        await queue.purge()
    finally:
        await channel.close()


class ConfirmsAtOnce:
    """A publisher the broker never slows: what a census costs without publishing."""

    async def declare(self) -> None:
        pass

    async def publish_observations(self, observations: Sequence[ListingObserved]) -> None:
        pass

    async def publish_census(self, census: CensusCompleted) -> None:
        pass


async def bench(base_url: str) -> dict[str, object]:
    """``ROUNDS`` rounds of (census, raw publish of that census's messages), alternating, so a
    burst of load from other processes on this shared machine hits both sides alike; the best
    round of each side is reported, and their ratio."""
    namespace = f"bench{uuid.uuid4().hex[:8]}"
    settings = CrawlerSettings(
        namespace=namespace,
        fragment_url=base_url,
        politeness=False,
        item_pages="none",
        prior_state="memory",
    )
    topology = Topology(namespace)
    broker = make_broker(settings)
    await broker.connect()
    published: list[ListingObserved] = []

    class Collecting(MemoryPriorState):
        def remember(self, observations: Iterable[ListingObserved]) -> None:
            published.extend(observations)

    census_rates: list[float] = []
    unpublished_rates: list[float] = []
    raw_rates: list[float] = []
    depths: list[int] = []
    complete = True
    try:
        publisher = ListingsPublisher(broker, topology)
        for round_number in range(1, ROUNDS + 1):
            published.clear()
            runner = CensusRunner(settings, publisher, CrawlerMetrics(), Collecting())
            report = await runner.run()
            complete = complete and report.complete and report.rows == LISTINGS
            census_rates.append(report.rows / report.duration_s)
            depths.append(await queue_depth(broker, topology))
            log(
                f"round {round_number}: census {report.rows} rows in {report.duration_s:.2f}s, "
                f"complete={report.complete}, queued={depths[-1]}"
            )
            await purge(broker, topology)

            unpublished = CensusRunner(
                settings,
                ConfirmsAtOnce(),  # type: ignore[arg-type]
                CrawlerMetrics(),
                MemoryPriorState(),
            )
            alone = await unpublished.run()
            unpublished_rates.append(alone.rows / alone.duration_s)
            log(f"round {round_number}: unpublished census in {alone.duration_s:.2f}s")

            started = time.perf_counter()
            for start in range(0, len(published), PAGE_ROWS):
                await publisher.publish_observations(published[start : start + PAGE_ROWS])
            raw_seconds = time.perf_counter() - started
            raw_rates.append(len(published) / raw_seconds)
            log(
                f"round {round_number}: raw publish of the same {len(published)} in {raw_seconds:.2f}s"
            )
            await purge(broker, topology)
    finally:
        await delete_namespace_queues(broker, topology)
        await broker.stop()

    census_rate, raw_rate = max(census_rates), max(raw_rates)
    unpublished_rate = max(unpublished_rates)
    return {
        "complete": complete,
        "census_rows": LISTINGS,
        "census_rows_per_s": round(census_rate, 1),
        "unpublished_census_rows_per_s": round(unpublished_rate, 1),
        "census_vs_unpublished": round(census_rate / unpublished_rate, 3),
        "unpublished_census_rows_per_s_by_round": [round(rate, 1) for rate in unpublished_rates],
        "queued_after_census": depths,
        "raw_publish_per_s": round(raw_rate, 1),
        "ratio": round(census_rate / raw_rate, 3),
        "rounds": ROUNDS,
        "census_rows_per_s_by_round": [round(rate, 1) for rate in census_rates],
        "raw_publish_per_s_by_round": [round(rate, 1) for rate in raw_rates],
    }


def main() -> None:
    port = free_port()
    simulator = start_simulator(port)
    base_url = f"http://127.0.0.1:{port}"
    try:
        warm_simulator(base_url)
        parse_rows_per_s = parse_rate(base_url)
        log(f"parse: {parse_rows_per_s:.0f} rows/s")
        figures = asyncio.run(bench(base_url))
    finally:
        simulator.terminate()
        simulator.wait(10)
    result = {
        "bench": "crawl",
        "listings": LISTINGS,
        **figures,
        "target_ratio": TARGET_RATIO,
        "meets_target": bool(figures["complete"])
        and float(str(figures["census_vs_unpublished"])) >= TARGET_RATIO,
        "parse_page_rows": PAGE_ROWS,
        "parse_rows_per_s": round(parse_rows_per_s, 1),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
