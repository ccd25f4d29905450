"""Benchmark: does the cost of serving stay flat while the stored history grows?

The same market (20,000 listings) is stored twice, with a small and a large history (10,000 and
300,000 history rows and events); each run is the other's baseline, in the same process. For
each: the api's resident memory after start, its time from start to ready, and p95 of

- ``GET /api/v1/listings/{asset}/{slug}`` of a listing with 50 history rows,
- ``GET /api/v1/events?since=<a recent position>``,
- ``GET /api/v1/stats/market``,
- the notifier's resume query over the last 1,000 events (``EventStore.events_after``, read to
  the end: what a ``/ws?since=`` replay reads from the database).

Targets: every figure with the large history within 1.5 x its figure with the small one, and
every p95 under 100 ms. Prints one JSON line (``"bench": "history"``); progress on stderr.

Run: ``uv run python benchmarks/history.py`` (full: 20,000 listings, 10,000 and 300,000 rows;
several minutes, most of it storing the history) or ``--quick`` (2,000 listings, 1,000 and
10,000 rows: proves it works). Assumes ``scripts/infra.sh up``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from fragmenty_notifier.event_store import EventStore  # noqa: E402
from fragmenty_shared.contracts import Asset, EventType, ListingStatus  # noqa: E402
from fragmenty_shared.event_log import EventLogReader  # noqa: E402
from fragmenty_shared.settings import Settings  # noqa: E402
from fragmenty_shared.storage import make_mongo_client  # noqa: E402
from tests.integration.api.market_seed import SeedListing, seed_market  # noqa: E402
from tests.support.private_servers import free_port  # noqa: E402

TARGET_ROWS = 50  # history rows of the listing whose detail is requested
REQUESTS = 200  # per figure
RESUME_EVENTS = 1_000
RATIO_TARGET = 1.5
P95_TARGET_MS = 100.0


def log(message: str) -> None:
    print(f"[bench history] {message}", file=sys.stderr, flush=True)


def market(rng: random.Random, listings: int, rows: int) -> list[SeedListing]:
    """``listings`` listings holding ``rows`` history rows between them; the first has 50
    (with fewer rows than listings, some listings have no stored history)."""
    now = datetime.now(UTC)
    per_listing = [0] * listings
    per_listing[0] = TARGET_ROWS
    for _ in range(max(0, rows - TARGET_ROWS)):
        per_listing[rng.randrange(1, listings)] += 1
    result = []
    for index, count in enumerate(per_listing):
        slug = f"888{index:08d}"
        start = now - timedelta(days=60) + timedelta(seconds=rng.randrange(86_400))
        price = Decimal(rng.randint(10, 100_000))
        changes = [(start, EventType.LISTED, ListingStatus.AUCTION, price)]
        for step in range(1, count):
            price = price + Decimal(rng.randint(1, 50))
            at = start + timedelta(minutes=step * rng.randint(1, 60))
            changes.append((min(at, now), EventType.PRICE_CHANGED, ListingStatus.AUCTION, price))
        result.append(
            SeedListing(
                Asset.NUMBER,
                slug,
                ListingStatus.AUCTION,
                price,
                start,
                ends_at=now + timedelta(days=3),
                changes=changes,
                without_history=count == 0,
            )
        )
    return result


def p95_ms(latencies: list[float]) -> float:
    latencies = sorted(latencies)
    return round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.95))] * 1000, 2)


async def timed(call: Any, count: int) -> float:
    latencies = []
    for _ in range(count):
        started = time.perf_counter()
        await call()
        latencies.append(time.perf_counter() - started)
    return p95_ms(latencies)


def resident_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


async def measure(settings: Settings, listings: int, rows: int, requests: int) -> dict[str, Any]:
    database_name = f"bench_history_{uuid.uuid4().hex[:8]}"
    client = make_mongo_client(settings.mongodb_url)
    database = client[database_name]
    process: subprocess.Popen[bytes] | None = None
    try:
        log(f"storing {listings} listings with {rows} history rows")
        stored_at = time.perf_counter()
        events = await seed_market(database, market(random.Random(rows), listings, rows))
        log(f"stored {len(events)} events in {time.perf_counter() - stored_at:.0f} s")
        last = await EventLogReader(database).last_seq()
        port = free_port()
        env = {
            **os.environ,
            "FRAGMENTY_MONGODB_URL": settings.mongodb_url,
            "FRAGMENTY_MONGODB_DATABASE": database_name,
            "FRAGMENTY_API_PORT": str(port),
            "FRAGMENTY_LIVE_UPDATES": "false",
            "FRAGMENTY_EXPENSIVE_REQUESTS_PER_MINUTE": "100000",
            "FRAGMENTY_LOG_LEVEL": "WARNING",
        }
        started = time.perf_counter()
        process = subprocess.Popen(  # noqa: ASYNC220 -- started once, waited for over HTTP
            [sys.executable, "-m", "fragmenty_api"], env=env, cwd=REPO
        )
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            while True:
                if process.poll() is not None:
                    raise RuntimeError("the api exited during start-up")
                try:
                    if (await http.get("/readyz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.02)
            ready_s = time.perf_counter() - started
            await asyncio.sleep(1.0)  # let start-up garbage settle before reading the RSS
            memory = resident_mb(process.pid)

            async def get(path: str, **params: Any) -> None:
                response = await http.get(path, params=params)
                assert response.status_code == 200, (path, response.status_code, response.text)

            detail = await timed(lambda: get("/api/v1/listings/number/88800000000"), requests)
            feed = await timed(lambda: get("/api/v1/events", since=max(0, last - 50)), requests)
            stats = await timed(lambda: get("/api/v1/stats/market"), requests)
        store = EventStore(database)

        async def resume() -> None:
            count = 0
            async for _ in store.events_after(max(0, last - RESUME_EVENTS), limit=RESUME_EVENTS):
                count += 1
            assert count == min(last, RESUME_EVENTS)

        resume_p95 = await timed(resume, max(20, requests // 10))
        figures = {
            "history_rows": len(events),
            "api_rss_mb": memory,
            "api_ready_s": round(ready_s, 2),
            "listing_detail_p95_ms": detail,
            "events_since_p95_ms": feed,
            "stats_market_p95_ms": stats,
            "notifier_resume_1000_p95_ms": resume_p95,
        }
        log(f"{rows} rows: {figures}")
        return figures
    finally:
        if process is not None:
            process.terminate()
            process.wait(timeout=30)
        await client.drop_database(database_name)
        await client.close()


async def main(arguments: argparse.Namespace) -> dict[str, Any]:
    settings = Settings()
    small = await measure(settings, arguments.listings, arguments.small, arguments.requests)
    large = await measure(settings, arguments.listings, arguments.large, arguments.requests)
    compared = [key for key in small if key != "history_rows"]
    ratios = {key: round(large[key] / max(small[key], 1e-9), 2) for key in compared}
    p95s = [large[key] for key in compared if key.endswith("_p95_ms")] + [
        small[key] for key in compared if key.endswith("_p95_ms")
    ]
    return {
        "bench": "history",
        "listings": arguments.listings,
        "small": small,
        "large": large,
        "large_vs_small": ratios,
        "targets": {
            "each_within_1_5x": all(ratio <= RATIO_TARGET for ratio in ratios.values()),
            "each_p95_under_100_ms": all(p95 < P95_TARGET_MS for p95 in p95s),
        },
    }


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2,000 listings, 1,000/10,000 rows")
    parser.add_argument("--listings", type=int, default=20_000)
    parser.add_argument("--small", type=int, default=10_000, help="history rows, baseline")
    parser.add_argument("--large", type=int, default=300_000, help="history rows")
    parser.add_argument("--requests", type=int, default=REQUESTS, help="per figure")
    arguments = parser.parse_args()
    if arguments.quick:
        arguments.listings, arguments.small, arguments.large = 2_000, 1_000, 10_000
        arguments.requests = min(arguments.requests, 100)
    return arguments


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(parse_arguments()))))
