"""Freshness benchmark: how soon the crawler sees a change, scheduler vs today's census loop.

The simulator (in this process) evolves a market at a steady pace and records when each change
happened: new listings, price changes of auctions ending within an hour, other price changes,
sales, delistings. The crawler runs against it at its default polite budget (1 request/s) for
``--minutes``, first as today's census loop (``run --every`` without the scheduler: plain
censuses back to back, the baseline), then with the scheduler (heads, rolling census, item
pages), on the same market history (same seed and change script).

Detection is measured **at the crawler's output**: the time from the change in the simulator
to the first observation on the ingest queue that carries it (a row of a page message) (for a delisting: to the
first complete ``CensusCompleted`` of its view after the change). Ingest and the notifier add
their own latency on top (docs/ingest.md, docs/notifier.md); the WebSocket end-to-end figure
the issue asks for is not measured here yet.

Prints one JSON line per run: ``{"bench": "freshness", "mode": ..., per kind: count, p50_s,
p95_s, max_s, missed}, "census_period_s": ...}``, then a summary line with the targets
(new listings and sales p95 < 15 s, auctions ending within the hour p95 < 30 s, nothing missed,
census period <= 1.25 x the baseline's). ``--quick`` runs a small market for a few minutes (to
prove the script works); the full scale is ``--listings 20000 --minutes 20``.
Assumes RabbitMQ on ``FRAGMENTY_RABBITMQ_URL`` (``make infra``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import statistics
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import aio_pika

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
from fragmenty_shared.topology import Topology
from fragmenty_simulator.app import Simulator, SimulatorConfig
from fragmenty_simulator.market import HistoryRecord, SimListing, end_auction
from fragmenty_simulator.server import build_simulator, running_simulator

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root
from tests.support.broker_cleanup import delete_namespace_queues

KINDS = ("new_listing", "price_ending_soon", "price_other", "sale", "delisting")


def log(message: str) -> None:
    print(f"[freshness bench] {message}", file=sys.stderr, flush=True)


@dataclass
class Change:
    kind: str
    asset: Asset
    slug: str
    at: float  # time.monotonic()
    status: ListingStatus | None  # None: delisted
    price: Decimal | None
    wall: float = field(default_factory=time.time)
    seen_at: float | None = None


@dataclass
class Run:
    changes: list[Change] = field(default_factory=list)
    census_periods: list[float] = field(default_factory=list)


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
                self.run.changes.append(change)
                self.sim.market.touch()

    def _pick(self, status: ListingStatus) -> SimListing | None:
        candidates = [x for x in self.sim.market.listings.values() if x.status is status]
        return self.rng.choice(candidates) if candidates else None

    def apply(self, kind: str) -> Change | None:
        market, now = self.sim.market, time.monotonic()
        if kind == "new_listing":
            asset = self.rng.choice((Asset.NUMBER, Asset.USERNAME))
            slug = (
                f"888{self.rng.randrange(10**8):08d}"
                if asset is Asset.NUMBER
                else f"fresh{self.counter}x{self.rng.randrange(10**4)}"
            )
            listing = SimListing(
                asset, slug, ListingStatus.AUCTION, Decimal(self.rng.randint(10, 5000)),
                market.now, market.now + timedelta(days=3), None, "UQ" + "B" * 46,
            )  # fmt: skip
            market.listings[(asset, slug)] = listing
            return Change(kind, asset, slug, now, listing.status, listing.price_ton)
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


async def watch_queue(url: str, topology: Topology, run: Run) -> None:
    """Match every message on the ingest queue against the changes not yet seen."""
    connection = await aio_pika.connect_robust(url)
    async with connection:
        channel = await connection.channel()
        queue = await channel.get_queue(topology.ingest_queue.name, ensure=False)
        async with queue.iterator() as incoming:
            async for message in incoming:
                await message.ack()
                now = time.monotonic()
                try:
                    parsed = listings_message_adapter.validate_json(message.body)
                except ValueError as error:  # not ours to judge here: say so and go on
                    log(f"unreadable message on the queue: {error}")
                    continue
                for observation in observations_in(parsed):  # a page: each of its rows
                    _saw(run, observation, now)
                if isinstance(parsed, CensusCompleted):
                    for view in parsed.views:
                        if view.complete and view.status is ListingStatus.SALE:
                            started = parsed.started_at.timestamp()
                            _delistings_seen(run, view.asset, started, now)


def _saw(run: Run, observation: ListingObserved, now: float) -> None:
    for change in run.changes:
        if (
            change.seen_at is None
            and change.status is not None
            and (change.asset, change.slug) == (observation.asset, observation.slug)
            and (observation.status, observation.price_ton) == (change.status, change.price)
        ):
            change.seen_at = now


def _delistings_seen(run: Run, asset: Asset, census_started: float, now: float) -> None:
    # A complete sale view of a census begun after the withdrawal: ingest delists it now.
    for change in run.changes:
        if (
            change.kind == "delisting"
            and change.asset is asset
            and change.seen_at is None
            and census_started > change.wall
        ):
            change.seen_at = now


async def one_run(args: argparse.Namespace, scheduled: bool) -> dict[str, Any]:
    simulator = build_simulator(
        args.listings, args.seed, config=SimulatorConfig(page_size=500, seed=args.seed)
    )
    namespace = f"fresh{uuid.uuid4().hex[:8]}"
    settings = CrawlerSettings(
        namespace=namespace,
        prior_state="memory",
        item_page_cap=args.item_page_cap,
        crawl_rate=args.rate,
    )
    topology = Topology(namespace)
    run = Run()
    broker = make_broker(settings)
    await broker.connect()
    await declare_listings_topology(broker, topology)
    async with running_simulator(simulator) as site:
        crawl = settings.model_copy(update={"fragment_url": site.base_url})
        runner = build_runner(crawl, broker, CrawlerMetrics(), scheduled=scheduled)
        watcher = asyncio.create_task(watch_queue(settings.rabbitmq_url, topology, run))
        # A watcher that dies would make every change look missed: say so at once.
        watcher.add_done_callback(
            lambda task: (
                None
                if task.cancelled() or task.exception() is None
                else log(f"queue watcher failed: {task.exception()!r}; figures are invalid")
            )
        )
        changer = MarketChanger(simulator, args.seed, 60.0 / args.changes_per_minute, run)
        changing: asyncio.Task[None] | None = None
        deadline = time.monotonic() + args.minutes * 60
        # The market stops changing for the last fifth of the run, so a change made just before
        # the end is not counted as missed: every change gets time to be seen.
        stop_changing_at = time.monotonic() + args.minutes * 60 * 0.8
        try:
            while time.monotonic() < deadline:
                if changing is not None and time.monotonic() > stop_changing_at:
                    changing.cancel()
                started = time.monotonic()
                report = await runner.run()
                run.census_periods.append(time.monotonic() - started)
                log(
                    f"{'scheduled' if scheduled else 'baseline'} census "
                    f"{'complete' if report.complete else 'INCOMPLETE'} in "
                    f"{run.census_periods[-1]:.0f}s; {len(run.changes)} changes so far"
                )
                if changing is None:  # the market starts moving once it is known
                    changing = asyncio.create_task(changer.loop())
        finally:
            if changing is not None:
                changing.cancel()
            await asyncio.sleep(2)  # the last confirms reach the watcher
            watcher.cancel()
            await delete_namespace_queues(broker, topology)
            await broker.stop()
    return summary(run, scheduled)


def summary(run: Run, scheduled: bool) -> dict[str, Any]:
    figures: dict[str, Any] = {
        "bench": "freshness",
        "mode": "scheduled" if scheduled else "baseline",
    }
    for kind in KINDS:
        changes = [c for c in run.changes if c.kind == kind]
        latencies = sorted(c.seen_at - c.at for c in changes if c.seen_at is not None)
        figures[kind] = {
            "count": len(changes),
            "p50_s": round(statistics.median(latencies), 1) if latencies else None,
            # nearest rank: the smallest latency that 95 % of the detected changes are within
            "p95_s": round(latencies[math.ceil(0.95 * len(latencies)) - 1], 1)
            if latencies
            else None,
            "max_s": round(latencies[-1], 1) if latencies else None,
            "missed": len(changes) - len(latencies),
        }
    # The first census (the whole market, every item page) is not the steady period.
    steady = run.census_periods[1:] or run.census_periods
    figures["census_period_s"] = round(statistics.median(steady), 1) if steady else None
    figures["censuses"] = len(run.census_periods)
    return figures


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--listings", type=int, default=20000)
    parser.add_argument("--minutes", type=float, default=20.0, help="per run (two runs)")
    parser.add_argument("--changes-per-minute", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=1.0, help="requests/s (default 1)")
    parser.add_argument("--item-page-cap", type=int, default=100)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="1,000 listings, 3 minutes a run")
    args = parser.parse_args()
    if args.quick:
        args.listings, args.minutes, args.item_page_cap = 1000, 3.0, 20
    baseline = await one_run(args, scheduled=False)
    print(json.dumps(baseline), flush=True)
    scheduled = await one_run(args, scheduled=True)
    print(json.dumps(scheduled), flush=True)
    targets = {
        "new_listing_p95_under_15s": (scheduled["new_listing"]["p95_s"] or 1e9) < 15,
        "sale_p95_under_15s": (scheduled["sale"]["p95_s"] or 1e9) < 15,
        "ending_soon_p95_under_30s": (scheduled["price_ending_soon"]["p95_s"] or 1e9) < 30,
        "nothing_missed": all(scheduled[kind]["missed"] == 0 for kind in KINDS),
        "census_period_within_1_25x": (scheduled["census_period_s"] or 1e9)
        <= 1.25 * (baseline["census_period_s"] or 0),
    }
    print(json.dumps({"bench": "freshness_targets", "scale": vars(args), **targets}), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
