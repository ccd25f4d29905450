"""Freshness benchmark: how soon a change on Fragment reaches a client, scheduler vs census loop.

The simulator (in this process) evolves a market at a steady pace and records when each change
happened: new listings, price changes of auctions ending within an hour, other price changes,
sales, delistings. The crawler (in this process, the code ``run --every`` runs) reads it at its
default polite budget (1 request/s) for ``--minutes``, first as today's census loop (plain
censuses back to back, without the scheduler: the baseline), then with the scheduler (heads,
rolling census, item pages), on the same market history (same seed and change script).

Detection is measured **end to end**: from the change in the simulator to the event at a
WebSocket client subscribed to everything, through RabbitMQ, the real ingest
(``python -m fragmenty_ingest``) and the real notifier (``python -m fragmenty_notifier``) on the
real database. Each run has a namespace, a database and services of its own, removed afterwards.
A change counts as seen when the client gets its event: ``listed`` for a new listing,
``price_changed`` at the new price, ``sold`` at the sale price, ``delisted``. The same changes
are also timed at the crawler's output (``crawler_output``: the first row carrying the change on
a queue of the benchmark's own bound to the listings exchange; for a delisting, the first
complete ``CensusCompleted`` of its view from a crawl that did not publish it), so the two halves
can be told apart.

Prints one JSON line per run: ``{"bench": "freshness", "mode": ..., per kind: count, p50_s,
p95_s, max_s, missed, crawler_output: {...}}, "census_period_s": ..., "load": [...]}``, then a
line with the targets (new listings and sales p95 < 15 s, auctions ending within the hour
p95 < 30 s, nothing missed, census period <= 1.25 x the baseline's). ``--quick`` runs a small
market for a few minutes (to prove the script works); the full scale is ``--listings 20000
--minutes 20`` (about 45 minutes). Assumes RabbitMQ and the database on ``FRAGMENTY_RABBITMQ_URL``
and ``FRAGMENTY_MONGODB_URL`` (``make infra``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import aio_pika
from faststream.rabbit import RabbitBroker
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from fragmenty_crawler.main import build_runner
from fragmenty_crawler.metrics import CrawlerMetrics
from fragmenty_crawler.settings import CrawlerSettings
from fragmenty_shared.broker import declare_listings_topology, make_broker
from fragmenty_shared.contracts import (
    Asset,
    CensusCompleted,
    ListingObserved,
    ListingStatus,
    listings_message_adapter,
    observations_in,
)
from fragmenty_shared.settings import Settings
from fragmenty_shared.topology import Topology
from fragmenty_simulator.app import Simulator, SimulatorConfig
from fragmenty_simulator.market import HistoryRecord, SimListing, end_auction
from fragmenty_simulator.server import build_simulator, running_simulator

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root
from tests.support.private_servers import free_port
from tests.support.processes import ServiceProcess, running, service_environment
from tests.support.run_data import remove_run_data

KINDS = ("new_listing", "price_ending_soon", "price_other", "sale", "delisting")
# The event a client gets for each kind of change.
EVENT_OF = {
    "new_listing": "listed",
    "price_ending_soon": "price_changed",
    "price_other": "price_changed",
    "sale": "sold",
    "delisting": "delisted",
}


def log(message: str) -> None:
    print(f"[freshness bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@dataclass
class Change:
    kind: str
    asset: Asset
    slug: str
    at: float  # time.monotonic()
    status: ListingStatus | None  # None: delisted
    price: Decimal | None
    wall: float = field(default_factory=time.time)
    seen_at: float | None = None  # at the crawler's output
    event_at: float | None = None  # at the WebSocket client

    def matches(self, event: dict[str, Any]) -> bool:
        if event.get("type") != EVENT_OF[self.kind]:
            return False
        if self.price is None:
            return True
        new = event.get("new") or {}
        return "price_ton" in new and Decimal(new["price_ton"]) == self.price


@dataclass
class Run:
    changes: list[Change] = field(default_factory=list)
    census_periods: list[float] = field(default_factory=list)
    # Per census, the requests it made by kind (page, api, item, history, head).
    census_requests: list[Counter[str]] = field(default_factory=list)
    # The changes of each listing, so a census page's 500 rows are matched by lookup.
    by_listing: dict[tuple[Asset, str], list[Change]] = field(
        default_factory=lambda: defaultdict(list)
    )
    # Per recent crawl, the listings for sale it published (a delisting's crawl must not).
    in_crawl: dict[str, set[tuple[Asset, str]]] = field(default_factory=lambda: defaultdict(set))
    events: int = 0
    reconnects: int = 0

    def add(self, change: Change) -> None:
        self.changes.append(change)
        self.by_listing[(change.asset, change.slug)].append(change)

    def observed(self, observation: ListingObserved, now: float) -> None:
        key = (observation.asset, observation.slug)
        if observation.status is ListingStatus.SALE:  # what a delisting is judged against
            if observation.crawl_id not in self.in_crawl and len(self.in_crawl) >= 4:
                del self.in_crawl[next(iter(self.in_crawl))]  # the oldest crawl's
            self.in_crawl[observation.crawl_id].add(key)
        for change in self.by_listing.get(key, ()):
            if (
                change.seen_at is None
                and change.status is not None
                and (observation.status, observation.price_ton) == (change.status, change.price)
            ):
                change.seen_at = now

    def census_seen(self, census: CensusCompleted, now: float) -> None:
        # A complete sale view of a crawl that did not publish the withdrawn listing: once the
        # crawl's views have all reported, ingest delists it.
        published = self.in_crawl.get(census.crawl_id, set())
        for view in census.views:
            if not view.complete or view.status is not ListingStatus.SALE:
                continue
            for change in self.changes:
                if (
                    change.kind == "delisting"
                    and change.asset is view.asset
                    and change.seen_at is None
                    and (change.asset, change.slug) not in published
                ):
                    change.seen_at = now

    def event_received(self, event: dict[str, Any], now: float) -> None:
        self.events += 1
        try:
            key = (Asset(event["asset"]), str(event["slug"]))
        except (KeyError, ValueError):
            return
        for change in self.by_listing.get(key, ()):
            if change.event_at is None and change.matches(event):
                change.event_at = now
                return


class MarketChanger:
    """One change every ``every_s`` seconds, drawn from the five kinds in turn."""

    def __init__(self, simulator: Simulator, seed: int, every_s: float, run: Run) -> None:
        self.sim, self.rng, self.every_s, self.run = simulator, random.Random(seed), every_s, run
        self.counter = 0

    async def loop(self) -> None:
        while True:
            await asyncio.sleep(self.every_s)
            kind = KINDS[self.counter % len(KINDS)]
            self.counter += 1
            change = self.apply(kind)
            if change is not None:
                self.run.add(change)
                self.sim.market.touch()

    def _pick(self, status: ListingStatus) -> SimListing | None:
        candidates = [x for x in self.sim.market.listings.values() if x.status is status]
        return self.rng.choice(candidates) if candidates else None

    def _new_slug(self, asset: Asset) -> str:
        while True:  # a slug already on the market would be a change of it, not a new listing
            slug = (
                f"888{self.rng.randrange(10**8):08d}"
                if asset is Asset.NUMBER
                else f"fresh{self.counter}x{self.rng.randrange(10**4)}"
            )
            if (asset, slug) not in self.sim.market.listings:
                return slug

    def apply(self, kind: str) -> Change | None:
        market, now = self.sim.market, time.monotonic()
        if kind == "new_listing":
            asset = self.rng.choice((Asset.NUMBER, Asset.USERNAME))
            slug = self._new_slug(asset)
            fresh = SimListing(
                asset, slug, ListingStatus.AUCTION, Decimal(self.rng.randint(10, 5000)),
                market.now, market.now + timedelta(days=3), None, "UQ" + "B" * 46,
            )  # fmt: skip
            market.listings[(asset, slug)] = fresh
            return Change(kind, asset, slug, now, fresh.status, fresh.price_ton)
        if kind == "price_ending_soon":
            listing = self._pick(ListingStatus.AUCTION)
            if listing is None:
                return None
            listing.ends_at = market.now + timedelta(minutes=self.rng.randint(5, 55))
            listing.bids.insert(0, HistoryRecord(listing.price_ton, market.now, "UQ" + "C" * 46))
            listing.price_ton = (listing.price_ton * Decimal("1.05")).quantize(Decimal(1)) + 1
            return Change(kind, listing.asset, listing.slug, now, listing.status, listing.price_ton)
        if kind == "price_other":
            listing = self._pick(ListingStatus.SALE)
            if listing is None:
                return None
            listing.price_ton = listing.price_ton + self.rng.randint(1, 50)
            return Change(kind, listing.asset, listing.slug, now, listing.status, listing.price_ton)
        if kind == "sale":
            listing = self._pick(ListingStatus.AUCTION)
            if listing is None:
                return None
            end_auction(listing, market.now, "UQ" + "D" * 46)
            listing.sold_at = market.now = market.now + timedelta(seconds=1)
            return Change(kind, listing.asset, listing.slug, now, listing.status, listing.price_ton)
        listing = self._pick(ListingStatus.SALE)
        if listing is None:
            return None
        del market.listings[(listing.asset, listing.slug)]
        return Change(kind, listing.asset, listing.slug, now, None, None)


@contextlib.asynccontextmanager
async def tapped(
    broker: RabbitBroker, topology: Topology
) -> AsyncIterator[aio_pika.abc.AbstractQueue]:
    """A queue of the benchmark's own on the listings exchange: what the crawler published
    (ingest consumes the ingest queue itself)."""
    await declare_listings_topology(broker, topology)
    channel = await broker._connection.channel()  # type: ignore[union-attr]
    try:
        queue = await channel.declare_queue(exclusive=True, auto_delete=True)
        await queue.bind(topology.listings_exchange.name, routing_key="#")
        yield queue
    finally:
        await channel.close()


async def watch_tap(queue: aio_pika.abc.AbstractQueue, run: Run) -> None:
    async with queue.iterator(no_ack=True) as incoming:
        async for message in incoming:
            now = time.monotonic()
            try:
                parsed = listings_message_adapter.validate_json(message.body)
            except ValueError as error:  # not ours to judge here: say so and go on
                log(f"unreadable message on the tap: {error}")
                continue
            for observation in observations_in(parsed):  # a page: each of its rows
                run.observed(observation, now)
            if isinstance(parsed, CensusCompleted):
                run.census_seen(parsed, now)


async def watch_events(url: str, run: Run, subscribed: asyncio.Event) -> None:
    """A WebSocket client subscribed to everything; after a disconnect it resumes from the
    last event it got (``?since=``), so nothing is lost, only late."""
    since: int | None = None
    while True:
        try:
            async with connect(
                url if since is None else f"{url}?since={since}", max_size=None
            ) as socket:
                await socket.send(json.dumps({"action": "subscribe", "id": "all", "filter": {}}))
                async for raw in socket:
                    now = time.monotonic()
                    frame = json.loads(raw)
                    if frame.get("type") == "subscribed":
                        subscribed.set()
                    elif frame.get("type") == "event":
                        event = frame["event"]
                        since = event.get("seq") or since
                        run.event_received(event, now)
        except (ConnectionClosed, OSError) as error:
            run.reconnects += 1
            log(f"event socket closed ({error!r}); reconnecting after seq {since}")
            await asyncio.sleep(0.5)


def warn_if_dead(name: str) -> Any:
    """A watcher that dies would make every change look missed: say so at once."""

    def check(task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log(f"{name} failed: {task.exception()!r}; figures are invalid")

    return check


def run_settings() -> Settings:
    """A namespace, a database and ports of this run's own."""
    run_id = uuid.uuid4().hex[:8]
    return Settings(
        namespace=f"fresh{run_id}",
        mongodb_database=f"bench_fresh_{run_id}",
        ingest_port=free_port(),
        notifier_port=free_port(),
        api_port=free_port(),
        crawler_port=free_port(),
    )


async def one_run(args: argparse.Namespace, scheduled: bool, log_dir: Path) -> dict[str, Any]:
    mode = "scheduled" if scheduled else "baseline"
    simulator = build_simulator(
        args.listings, args.seed, config=SimulatorConfig(page_size=500, seed=args.seed)
    )
    base = run_settings()
    env = service_environment(
        base, FRAGMENTY_LOG_LEVEL=os.environ.get("FRAGMENTY_LOG_LEVEL", "WARNING")
    )
    run_logs = log_dir / mode
    run_logs.mkdir(parents=True, exist_ok=True)
    ingest = ServiceProcess("ingest", "fragmenty_ingest", (), env, run_logs)
    notifier = ServiceProcess("notifier", "fragmenty_notifier", (), env, run_logs)
    run = Run()
    load = [os.getloadavg()[0]]
    broker = make_broker(base)
    await broker.connect()
    try:
        with running(ingest, notifier):
            await ingest.wait_ready(f"http://127.0.0.1:{base.ingest_port}/readyz")
            await notifier.wait_ready(f"http://127.0.0.1:{base.notifier_port}/readyz")
            async with tapped(broker, Topology(base.namespace)) as tap:
                await crawl_while_changing(args, scheduled, base, simulator, run, tap, load)
            for service in (ingest, notifier):
                if service.process is not None and service.process.poll() is not None:
                    log(f"{service.name} died during the run:\n{service.log_tail()}")
    finally:
        await broker.stop()
        await remove_run_data(base)
    load.append(os.getloadavg()[0])
    write_changes(run, run_logs / "changes.jsonl")
    return summary(run, mode, load)


def write_changes(run: Run, path: Path) -> None:
    """Each change with its latencies, one JSON line each: what a p95 is made of (kept with
    ``--log-dir``; the slow ones are then found in the services' logs by slug)."""
    started = run.changes[0].at if run.changes else 0.0
    with path.open("w") as out:
        for change in run.changes:
            record = {
                "kind": change.kind,
                "asset": change.asset.value,
                "slug": change.slug,
                "at_s": round(change.at - started, 2),
                "wall": change.wall,
                "crawler_output_s": _after(change, change.seen_at),
                "client_s": _after(change, change.event_at),
            }
            out.write(json.dumps(record) + "\n")


def _after(change: Change, moment: float | None) -> float | None:
    return None if moment is None else round(moment - change.at, 2)


async def crawl_while_changing(
    args: argparse.Namespace,
    scheduled: bool,
    base: Settings,
    simulator: Simulator,
    run: Run,
    tap: aio_pika.abc.AbstractQueue,
    load: list[float],
) -> None:
    settings = CrawlerSettings(
        rabbitmq_url=base.rabbitmq_url,
        namespace=base.namespace,
        mongodb_url=base.mongodb_url,
        mongodb_database=base.mongodb_database,
        prior_state="memory",
        item_page_cap=args.item_page_cap,
        crawl_rate=args.rate,
    )
    broker = make_broker(settings)
    await broker.connect()
    subscribed = asyncio.Event()
    watchers = [
        asyncio.create_task(watch_tap(tap, run)),
        asyncio.create_task(
            watch_events(f"ws://127.0.0.1:{base.notifier_port}/ws", run, subscribed)
        ),
    ]
    for name, task in zip(("crawler output watcher", "event client"), watchers, strict=True):
        task.add_done_callback(warn_if_dead(name))
    changing: asyncio.Task[None] | None = None
    try:
        # Inside the try: a client that never subscribes still has its watchers and the
        # broker connection cleaned up below.
        await asyncio.wait_for(subscribed.wait(), 30)
        async with running_simulator(simulator) as site:
            crawl = settings.model_copy(update={"fragment_url": site.base_url})
            metrics = CrawlerMetrics()
            runner = build_runner(crawl, broker, metrics, scheduled=scheduled)
            changer = MarketChanger(simulator, args.seed, 60.0 / args.changes_per_minute, run)
            deadline = time.monotonic() + args.minutes * 60
            # The market stops changing for the last fifth of the run, so a change made just
            # before the end is not counted as missed: every change gets time to be seen.
            stop_changing_at = time.monotonic() + args.minutes * 60 * 0.8
            while time.monotonic() < deadline:
                if changing is not None and time.monotonic() > stop_changing_at:
                    changing.cancel()
                started, before = time.monotonic(), requests_by_kind(metrics)
                report = await runner.run()
                run.census_periods.append(time.monotonic() - started)
                run.census_requests.append(requests_by_kind(metrics) - before)
                load.append(os.getloadavg()[0])
                log(
                    f"{'scheduled' if scheduled else 'baseline'} census "
                    f"{'complete' if report.complete else 'INCOMPLETE'} in "
                    f"{run.census_periods[-1]:.0f}s; {len(run.changes)} changes so far, "
                    f"{sum(c.event_at is not None for c in run.changes)} seen by the client, "
                    f"{run.events} events; load {load[-1]:.2f}; requests "
                    f"{dict(sorted(run.census_requests[-1].items()))}"
                )
                if changing is None:  # the market starts moving once it is known
                    changing = asyncio.create_task(changer.loop())
            await asyncio.sleep(5)  # the last events reach the client
    finally:
        if changing is not None:
            changing.cancel()
        for task in watchers:
            task.cancel()
        await asyncio.gather(*watchers, return_exceptions=True)
        await broker.stop()


def requests_by_kind(metrics: CrawlerMetrics) -> Counter[str]:
    """Requests made so far, by kind (``fragmenty_crawler_pages_total``)."""
    counts: Counter[str] = Counter()
    for family in metrics.registry.collect():
        if family.name == "fragmenty_crawler_pages":
            for sample in family.samples:
                if sample.name.endswith("_total"):
                    counts[sample.labels["kind"]] += int(sample.value)
    return counts


def latency_figures(changes: list[Change], latencies: list[float]) -> dict[str, Any]:
    latencies.sort()
    return {
        "p50_s": round(statistics.median(latencies), 1) if latencies else None,
        # nearest rank: the smallest latency that 95 % of the detected changes are within
        "p95_s": round(latencies[math.ceil(0.95 * len(latencies)) - 1], 1) if latencies else None,
        "max_s": round(latencies[-1], 1) if latencies else None,
        "missed": len(changes) - len(latencies),
    }


def summary(run: Run, mode: str, load: list[float]) -> dict[str, Any]:
    figures: dict[str, Any] = {"bench": "freshness", "mode": mode, "measured_at": "client"}
    for kind in KINDS:
        changes = [c for c in run.changes if c.kind == kind]
        at_client = [c.event_at - c.at for c in changes if c.event_at is not None]
        at_crawler = [c.seen_at - c.at for c in changes if c.seen_at is not None]
        figures[kind] = {
            "count": len(changes),
            **latency_figures(changes, at_client),
            "crawler_output": latency_figures(changes, at_crawler),
        }
    # The first census (the whole market, every item page) is not the steady period.
    steady = run.census_periods[1:] or run.census_periods
    figures["census_period_s"] = round(statistics.median(steady), 1) if steady else None
    figures["censuses"] = len(run.census_periods)
    # Where the budget went in the steady censuses: requests per census, by kind.
    steady_requests = run.census_requests[1:] or run.census_requests
    kinds = sorted({kind for counts in steady_requests for kind in counts})
    figures["requests_per_census"] = {
        kind: round(statistics.mean(counts[kind] for counts in steady_requests), 1)
        for kind in kinds
    }
    figures["events_received"] = run.events
    figures["client_reconnects"] = run.reconnects
    figures["load"] = {"start": load[0], "max": max(load), "end": load[-1]}
    return figures


async def both_in_parallel(log_dir: Path) -> dict[str, dict[str, Any]]:
    """This script again, once per mode (``--only``), at once; their JSON lines."""
    arguments = [a for a in sys.argv[1:] if a != "--parallel"]
    if "--log-dir" not in arguments:
        arguments += ["--log-dir", str(log_dir)]
    children = [
        await asyncio.create_subprocess_exec(
            sys.executable, __file__, *arguments, "--only", mode, stdout=asyncio.subprocess.PIPE
        )
        for mode in ("baseline", "scheduled")
    ]
    outputs = await asyncio.gather(*(child.communicate() for child in children))
    lines = [json.loads(out.splitlines()[-1]) for out, _ in outputs if out.strip()]
    return {line["mode"]: line for line in lines}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--listings", type=int, default=20000)
    parser.add_argument("--minutes", type=float, default=20.0, help="per run (two runs)")
    parser.add_argument("--changes-per-minute", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=1.0, help="requests/s (default 1)")
    parser.add_argument("--item-page-cap", type=int, default=100)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="1,000 listings, 3 minutes a run")
    parser.add_argument("--only", choices=("baseline", "scheduled"), help="one of the two runs")
    parser.add_argument(
        "--log-dir",
        type=Path,
        help="keep the services' logs and each change's latencies (<mode>/changes.jsonl) here",
    )
    parser.add_argument(
        "--parallel",
        action="store_true",
        help="run the baseline and the scheduler at the same time, each in a process of its "
        "own (half the wall time; both see the same machine load)",
    )
    args = parser.parse_args()
    if args.quick:
        args.listings, args.minutes, args.item_page_cap = 1000, 3.0, 20
    with tempfile.TemporaryDirectory(prefix="bench-freshness-") as folder:
        log_dir = args.log_dir or Path(folder)
        runs: dict[str, dict[str, Any]] = {}
        if args.parallel:
            runs = await both_in_parallel(log_dir)
        for mode in ("baseline", "scheduled"):
            if not args.parallel and args.only in (None, mode):
                runs[mode] = await one_run(args, mode == "scheduled", log_dir)
            if mode in runs:
                print(json.dumps(runs[mode]), flush=True)
    if len(runs) < 2:
        return
    baseline, scheduled = runs["baseline"], runs["scheduled"]
    targets = {
        "new_listing_p95_under_15s": (scheduled["new_listing"]["p95_s"] or 1e9) < 15,
        "sale_p95_under_15s": (scheduled["sale"]["p95_s"] or 1e9) < 15,
        "ending_soon_p95_under_30s": (scheduled["price_ending_soon"]["p95_s"] or 1e9) < 30,
        "nothing_missed": all(scheduled[kind]["missed"] == 0 for kind in KINDS),
        "census_period_within_1_25x": (scheduled["census_period_s"] or 1e9)
        <= 1.25 * (baseline["census_period_s"] or 0),
    }
    scale = {key: value for key, value in vars(args).items() if key != "log_dir"}
    print(json.dumps({"bench": "freshness_targets", "scale": scale, **targets}), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
