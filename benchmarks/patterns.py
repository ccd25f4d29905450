"""Benchmark of the worst search patterns: the api and the notifier's filters at 20,000 listings.

The worst patterns the syntax allows are 64 characters of stars and digits (and ``?``): long
star runs, stars between few digits (many ways to place them, all failing), stars between just
enough digits to fit a number. Measured in one run:

* **api over HTTP** (a separate ``fragmenty-api`` process, 20,000 listings seeded): each request
  is a new worst pattern (so every one is a full scan, never a cached answer); latency of each,
  and meanwhile the latency of ``/healthz`` polled back to back. Baseline: ``/healthz`` with the
  api idle, and a page without a pattern.
* **notifier filters** (in process, ``fragmenty_shared.filters``, what the notifier and alerts run
  for every event): one filter with a worst pattern over 20,000 events, one per listing.
* **naive baseline**: the previous translation (each ``*`` to ``[0-9]*``, with Python's
  backtracking ``re``) on the same listings, in a child process killed after a time limit.

Target: every worst pattern answers in under 50 ms at 20,000 listings, in the api and in the
notifier's filters, and ``/healthz`` stays fast meanwhile.

Run: ``uv run python benchmarks/patterns.py [--quick]`` (assumes ``scripts/infra.sh up``;
``--quick``: 2,000 listings, fewer requests). Prints one JSON line; progress on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import random
import re
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.api import market  # noqa: E402
from fragmenty_shared.contracts import Asset  # noqa: E402
from fragmenty_shared.filters import SubscriptionFilter, compile_filter  # noqa: E402
from fragmenty_shared.patterns import MAX_PATTERN_LENGTH  # noqa: E402
from fragmenty_shared.settings import Settings  # noqa: E402
from fragmenty_shared.storage import make_mongo_client  # noqa: E402
from tests.integration.api.market_seed import seed_market  # noqa: E402
from tests.support.private_servers import free_port  # noqa: E402
from tests.unit.notifier.factories import make_event  # noqa: E402

TARGET_MS = 50.0
NAIVE_TIME_LIMIT_S = 5.0


def log(message: str) -> None:
    print(f"[bench patterns] {message}", file=sys.stderr, flush=True)


def worst_pattern(kind: str, rng: random.Random) -> str:
    """A 64-character pattern of stars, digits and ``?`` of one hard kind (random digits, so
    that every call gives a new search)."""
    digit = lambda: rng.choice("0123456789")  # noqa: E731
    if kind == "star_run":  # the issue's **********1, at full length
        return "*" * (MAX_PATTERN_LENGTH - 1) + digit()
    if kind == "alternating":  # *d*d*d...: more digits than any number has
        return "".join("*" + digit() for _ in range(MAX_PATTERN_LENGTH // 2))
    if kind == "fits":  # ten pieces, stars between: one digit short of a number, the most
        # placements to try (with eleven, a number's length leaves every star empty)
        cells = ["*"] * MAX_PATTERN_LENGTH
        for position in rng.sample(range(1, MAX_PATTERN_LENGTH, 2), 10):
            cells[position] = rng.choice("0123456789?")
        return "".join(cells)
    if kind == "near_miss":  # 888 then runs of stars around repeated digits
        body = "888" + "".join("*" * rng.randint(1, 6) + digit() * 2 for _ in range(12))
        return body[:MAX_PATTERN_LENGTH]
    raise ValueError(kind)


KINDS = ("star_run", "alternating", "fits", "near_miss")


def naive_regex(pattern: str) -> str:
    """The translation the api and notifier used before: star runs kept, Python's ``re``."""
    body = "".join("[0-9]*" if c == "*" else "[0-9]" if c == "?" else c for c in pattern)
    return f"^{body}$"


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


def summary_ms(seconds: list[float]) -> dict[str, float]:
    return {
        "count": len(seconds),
        "p50_ms": round(statistics.median(seconds) * 1000, 2),
        "p95_ms": round(percentile(seconds, 0.95) * 1000, 2),
        "max_ms": round(max(seconds) * 1000, 2),
    }


def _naive_child(pattern: str, slugs: list[str], done: Any) -> None:
    compiled = re.compile(naive_regex(pattern))
    for slug in slugs:
        compiled.search(slug)
        with done.get_lock():
            done.value += 1


def naive_baseline(pattern: str, slugs: list[str]) -> dict[str, Any]:
    """How far the naive regex gets through ``slugs`` within the time limit."""
    done = multiprocessing.Value("i", 0)
    child = multiprocessing.Process(target=_naive_child, args=(pattern, slugs, done))
    started = time.perf_counter()
    child.start()
    child.join(NAIVE_TIME_LIMIT_S)
    elapsed = time.perf_counter() - started
    finished = not child.is_alive()
    if not finished:
        child.kill()
        child.join()
    result: dict[str, Any] = {"finished": finished, "listings_done": done.value}
    if finished:
        result["ms"] = round(elapsed * 1000, 1)
    else:
        result["gave_up_after_s"] = NAIVE_TIME_LIMIT_S
    return result


def filters_in_process(slugs: list[str], rng: random.Random) -> dict[str, Any]:
    """The notifier's filter with each kind of worst pattern over one event per listing, and as
    baseline the same walk with a filter of one key and no pattern (the cost of the walk)."""
    events = [make_event(slug) for slug in slugs]
    results: dict[str, Any] = {}
    timings = []
    for _ in range(5):
        started = time.perf_counter()
        event_filter = compile_filter(SubscriptionFilter(assets=[Asset.NUMBER]))
        matched = sum(1 for event in events if event_filter.matches(event))
        timings.append(time.perf_counter() - started)
    results["baseline_without_pattern"] = {**summary_ms(timings), "matched": matched}
    for kind in KINDS:
        timings = []
        for _ in range(5):
            pattern = worst_pattern(kind, rng)
            started = time.perf_counter()
            event_filter = compile_filter(SubscriptionFilter(pattern=pattern))
            matched = sum(1 for event in events if event_filter.matches(event))
            timings.append(time.perf_counter() - started)
        results[kind] = {**summary_ms(timings), "last_pattern": pattern, "matched": matched}
        log(f"filters {kind}: {results[kind]}")
    return results


def baseline_naive(slugs: list[str], rng: random.Random) -> dict[str, Any]:
    results: dict[str, Any] = {"issue_example_**********1": naive_baseline("**********1", slugs)}
    for kind in KINDS:
        results[kind] = naive_baseline(worst_pattern(kind, rng), slugs)
    for name, result in results.items():
        log(f"naive {name}: {result}")
    return results


async def wait_ready(session: aiohttp.ClientSession, process: subprocess.Popen[bytes]) -> None:
    for _ in range(1200):
        if process.poll() is not None:
            raise RuntimeError("fragmenty-api exited during start-up")
        with contextlib.suppress(aiohttp.ClientError):
            async with session.get("/readyz") as response:
                if response.status == 200:
                    return
        await asyncio.sleep(0.1)
    raise RuntimeError("fragmenty-api did not become ready")


async def timed_get(session: aiohttp.ClientSession, path: str, params: dict[str, str]) -> float:
    started = time.perf_counter()
    async with session.get(path, params=params) as response:
        body = await response.read()
        if response.status != 200:
            raise RuntimeError(f"{path}: {response.status} {body[:200]!r}")
    return time.perf_counter() - started


async def healthz_while(session: aiohttp.ClientSession, running: Callable[[], bool]) -> list[float]:
    """``/healthz`` latencies, polled back to back (1 ms apart) while ``running()``."""
    latencies = []
    while running():
        latencies.append(await timed_get(session, "/healthz", {}))
        await asyncio.sleep(0.001)
    return latencies


async def api_over_http(listings: int, searches: int, rng: random.Random) -> dict[str, Any]:
    settings = Settings(mongodb_database=f"bench_patterns_{uuid.uuid4().hex[:8]}")
    mongo = make_mongo_client(settings.mongodb_url)
    process: subprocess.Popen[bytes] | None = None
    try:
        started = time.perf_counter()
        await seed_market(mongo[settings.mongodb_database], market(rng, listings))
        log(f"seeded {listings} listings in {time.perf_counter() - started:.1f}s")
        port = free_port()
        env = {
            **os.environ,
            "FRAGMENTY_MONGODB_URL": settings.mongodb_url,
            "FRAGMENTY_MONGODB_DATABASE": settings.mongodb_database,
            "FRAGMENTY_API_PORT": str(port),
            "FRAGMENTY_HOST": "127.0.0.1",
            "FRAGMENTY_LOG_LEVEL": "WARNING",
            "FRAGMENTY_LIVE_UPDATES": "false",
        }
        process = subprocess.Popen(  # noqa: ASYNC220 -- started once, waited for over HTTP
            [sys.executable, "-m", "fragmenty_api"], env=env, cwd=REPO
        )
        # Two connections: one for the searches, one for the health probe.
        connector = aiohttp.TCPConnector(limit=2)
        async with aiohttp.ClientSession(f"http://127.0.0.1:{port}", connector=connector) as s:
            await wait_ready(s, process)
            log("api ready")
            idle_health = [await timed_get(s, "/healthz", {}) for _ in range(200)]
            plain_page = [
                await timed_get(s, "/api/v1/listings", {"asset": "number", "limit": "50"})
                for _ in range(50)
            ]
            per_kind: dict[str, list[float]] = {kind: [] for kind in KINDS}
            searching = True

            async def search_all() -> None:
                nonlocal searching
                try:
                    for index in range(searches):
                        kind = KINDS[index % len(KINDS)]
                        params = {"asset": "number", "q": worst_pattern(kind, rng), "limit": "50"}
                        per_kind[kind].append(await timed_get(s, "/api/v1/listings", params))
                finally:
                    searching = False

            _, busy_health = await asyncio.gather(search_all(), healthz_while(s, lambda: searching))
    finally:
        if process is not None:
            process.terminate()
            process.wait(timeout=15)
        await mongo.drop_database(settings.mongodb_database)
        await mongo.close()
    every_search = [seconds for timings in per_kind.values() for seconds in timings]
    result = {
        "listings": listings,
        "worst_pattern_searches": {
            "all": summary_ms(every_search),
            **{kind: summary_ms(timings) for kind, timings in per_kind.items()},
        },
        "healthz_during_searches": summary_ms(busy_health),
        "baseline_healthz_idle": summary_ms(idle_health),
        "baseline_page_without_pattern": summary_ms(plain_page),
    }
    log(f"api: {result}")
    return result


async def run(args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(17)
    slugs = [listing.slug for listing in market(random.Random(7), args.listings)]
    numbers = [slug for slug in slugs if slug.isdigit()]
    filters = filters_in_process(slugs, rng)
    naive = baseline_naive(numbers, rng)
    api = await api_over_http(args.listings, args.searches, rng)
    api_max = api["worst_pattern_searches"]["all"]["max_ms"]
    filters_max = max(result["max_ms"] for kind, result in filters.items() if kind in KINDS)
    return {
        "bench": "patterns",
        "listings": args.listings,
        "pattern_length": MAX_PATTERN_LENGTH,
        "api": api,
        "notifier_filters": filters,
        "baseline_naive_regex": naive,
        "targets": {
            "api_worst_pattern_under_50ms": api_max < TARGET_MS,
            "notifier_filter_worst_pattern_under_50ms": filters_max < TARGET_MS,
            "healthz_p95_under_50ms_during_searches": (
                api["healthz_during_searches"]["p95_ms"] < TARGET_MS
            ),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listings", type=int, default=20_000)
    parser.add_argument("--searches", type=int, default=200, help="worst-pattern api requests")
    parser.add_argument("--quick", action="store_true", help="2,000 listings, 20 searches")
    args = parser.parse_args()
    if args.quick:
        args.listings, args.searches = 2_000, 20
    print(json.dumps(asyncio.run(run(args))), flush=True)


if __name__ == "__main__":
    main()
