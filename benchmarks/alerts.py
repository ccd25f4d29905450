"""Alerts: event published -> webhook received, and what matching costs per event.

    uv run python benchmarks/alerts.py                 # 10,000 rules, 1,000 accounts, 50 events/s, 60 s
    uv run python benchmarks/alerts.py --quick         # 500 rules, 50 accounts, 20 events/s, 10 s

Prints one JSON line:

- ``latency_ms``: p50/p95/p99 from the moment an event is published to RabbitMQ until each
  webhook it fires is received (signature checked) by a local receiver, through the real alerts
  service (``python -m fragmenty_alerts``, its own namespace and database), every account with
  a webhook endpoint of its own;
- ``deliveries`` / ``expected``: webhooks received, and how many the rules call for (every
  event matched in the benchmark process against the same rules, which have no cooldown or cap);
- ``matching_us_per_event``: at 100, 1,000 and 10,000 rules (or --rules), microseconds per event
  with the rule index and, as the baseline measured in the same run, testing every rule in turn.

Target: p99 under 250 ms at 10,000 rules. Needs RabbitMQ and the database (``make infra``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from aiohttp import web

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from standardwebhooks.webhooks import Webhook  # noqa: E402

from fragmenty_alerts.channels.webhook import new_secret  # noqa: E402
from fragmenty_alerts.index import RuleIndex  # noqa: E402
from fragmenty_alerts.rules import Rule, RuleSpec  # noqa: E402
from fragmenty_alerts.store import AlertsStore  # noqa: E402
from fragmenty_shared.broker import make_broker  # noqa: E402
from fragmenty_shared.contracts import (  # noqa: E402
    Asset,
    EventType,
    ListingSnapshot,
    ListingStatus,
    PriceEvent,
    make_event_id,
)
from fragmenty_shared.settings import Settings  # noqa: E402
from fragmenty_shared.storage import make_mongo_client  # noqa: E402
from fragmenty_shared.topology import PUBLISHED_AT_HEADER, Topology  # noqa: E402
from tests.support.broker_cleanup import delete_namespace_queues  # noqa: E402
from tests.support.private_servers import free_port  # noqa: E402

NUMBERS = [f"8880{n:07d}" for n in range(0, 200_000, 10)]  # 20,000 numbers
USERNAMES = [
    f"{word}{n}" for word in ("ton", "crypto", "boris", "anna", "gift") for n in range(400)
]


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def rule_spec(chooser: random.Random) -> dict[str, Any]:
    """A rule as traders write them: mostly watched listings and patterns, some thresholds."""
    shape = chooser.random()
    spec: dict[str, Any] = {"cooldown": 0, "daily_cap": None}
    if shape < 0.45:
        spec["slugs"] = chooser.sample(NUMBERS, 3)
    elif shape < 0.6:
        spec["slugs"] = [chooser.choice(USERNAMES)]
        spec["assets"] = ["username"]
    elif shape < 0.8:
        spec["pattern"] = f"8880{chooser.randrange(1000):03d}*"
    elif shape < 0.9:
        spec["pattern"] = f"8880{chooser.randrange(100):02d}*"
        spec["below_price_ton"] = str(chooser.randrange(50, 2000))
    else:
        low = chooser.randrange(100, 50_000)
        spec["types"] = [chooser.choice(["sold", "listed"])]
        spec["min_price_ton"] = str(low)
        spec["max_price_ton"] = str(int(low * 1.02))
    return spec


def compiled(specs: list[dict[str, Any]]) -> list[Rule]:
    return [
        Rule.compile(f"rl_{n}", f"acc_{n % 1000}", RuleSpec.model_validate(spec), "t")
        for n, spec in enumerate(specs)
    ]


def make_event(chooser: random.Random, moment: datetime) -> PriceEvent:
    asset = Asset.NUMBER if chooser.random() < 0.85 else Asset.USERNAME
    slug = chooser.choice(NUMBERS if asset is Asset.NUMBER else USERNAMES)
    kind = chooser.choice(
        [EventType.PRICE_CHANGED, EventType.PRICE_CHANGED, EventType.LISTED, EventType.SOLD]
    )
    old_price = Decimal(chooser.randrange(10, 60_000))
    new_price = (old_price * Decimal(chooser.uniform(0.6, 1.4))).quantize(Decimal(1))
    if new_price == old_price:
        new_price += 1
    status = ListingStatus.SOLD if kind is EventType.SOLD else ListingStatus.AUCTION
    old = (
        None
        if kind is EventType.LISTED
        else ListingSnapshot(status=ListingStatus.AUCTION, price_ton=old_price)
    )
    return PriceEvent(
        event_id=make_event_id(asset, slug, kind, moment),
        type=kind,
        asset=asset,
        slug=slug,
        title=f"+{slug}" if asset is Asset.NUMBER else f"@{slug}",
        occurred_at=moment,
        old=old,
        new=ListingSnapshot(status=status, price_ton=new_price),
        change_pct=float((new_price - old_price) / old_price * 100) if old is not None else None,
    )


def matching_cost(
    specs: list[dict[str, Any]], sizes: list[int], chooser: random.Random
) -> dict[str, dict[str, float]]:
    """Microseconds per event, index against testing every rule, at each rule count."""
    moment = datetime.now(UTC)
    events = [make_event(chooser, moment + timedelta(microseconds=n)) for n in range(2000)]
    figures: dict[str, dict[str, float]] = {}
    for size in sizes:
        index = RuleIndex()
        for rule in compiled(specs[:size]):
            index.put(rule)
        sample = events if size <= 1000 else events[:500]
        started = time.perf_counter()
        fast = [len(index.matching(event)) for event in sample]
        indexed = time.perf_counter() - started
        started = time.perf_counter()
        slow = [len(index.matching_by_testing_every_rule(event)) for event in sample]
        every = time.perf_counter() - started
        assert fast == slow, "the index and the baseline disagree"
        figures[str(size)] = {
            "index_us": round(indexed / len(sample) * 1e6, 1),
            "every_rule_us": round(every / len(sample) * 1e6, 1),
            "matches_per_event": round(sum(fast) / len(sample), 2),
        }
    return figures


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


async def seed(
    store: AlertsStore, specs: list[dict[str, Any]], accounts: int, receiver_port: int
) -> dict[str, str]:
    """Accounts, one webhook each (an endpoint of its own), and the rules, written directly."""
    now = datetime.now(UTC)
    secrets_by_channel: dict[str, str] = {}
    channels = []
    for number in range(accounts):
        channel_id = f"ch_{number:08d}"
        secret = new_secret()
        secrets_by_channel[channel_id] = secret
        channels.append(
            {
                "_id": channel_id,
                "account_id": f"acc_{number}",
                "kind": "webhook",
                "url": f"http://127.0.0.1:{receiver_port}/hook/{channel_id}",
                "secrets": [secret],
                "enabled": True,
                "created_at": now,
            }
        )
    await store.accounts.insert_many(
        [{"_id": f"acc_{n}", "created_at": now} for n in range(accounts)]
    )
    await store.channels.insert_many(channels)
    rules = [
        {
            "_id": f"rl_{n}",
            "account_id": f"acc_{n % accounts}",
            "spec": RuleSpec.model_validate(spec).model_dump(mode="json"),
            "feed_token": secrets.token_urlsafe(8),
            "created_at": now,
            "updated_at": now,
        }
        for n, spec in enumerate(specs)
    ]
    for start in range(0, len(rules), 1000):
        await store.rules.insert_many(rules[start : start + 1000])
    return secrets_by_channel


async def run(arguments: argparse.Namespace) -> dict[str, Any]:
    chooser = random.Random(20261203)
    specs = [rule_spec(chooser) for _ in range(arguments.rules)]
    sizes = sorted(
        {size for size in (100, 1000, 10_000) if size <= arguments.rules} | {arguments.rules}
    )
    log(f"matching cost at {sizes} rules ...")
    matching = matching_cost(specs, sizes, random.Random(7))

    run_id = uuid.uuid4().hex[:8]
    settings = Settings(namespace=f"bench{run_id}", mongodb_database=f"bench_alerts_{run_id}")
    topology = Topology(settings.namespace)
    mongo = make_mongo_client(settings.mongodb_url)
    store = AlertsStore(mongo[settings.mongodb_database])
    receiver_port, alerts_port = free_port(), free_port()
    published: dict[str, float] = {}
    latencies: list[float] = []
    webhook_ids: set[str] = set()
    secrets_by_channel: dict[str, str] = {}

    async def receive(request: web.Request) -> web.Response:
        arrived = time.time()
        body = await request.read()
        payload = Webhook(secrets_by_channel[request.match_info["channel"]]).verify(
            body, dict(request.headers)
        )
        webhook_ids.add(request.headers["webhook-id"])
        event_id = payload["data"]["events"][0]["event_id"]
        latencies.append((arrived - published[event_id]) * 1000)
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook/{channel}", receive)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", receiver_port).start()
    process: subprocess.Popen[bytes] | None = None
    broker = make_broker(settings)
    try:
        log(f"seeding {arguments.rules} rules over {arguments.accounts} accounts ...")
        secrets_by_channel.update(await seed(store, specs, arguments.accounts, receiver_port))
        environment = dict(
            os.environ,
            FRAGMENTY_NAMESPACE=settings.namespace,
            FRAGMENTY_MONGODB_DATABASE=settings.mongodb_database,
            FRAGMENTY_ALERTS_PORT=str(alerts_port),
            FRAGMENTY_ALERTS_SSRF_ALLOWLIST='["127.0.0.0/8"]',
            FRAGMENTY_ALERTS_MAX_DELIVERIES_PER_MINUTE="100000",
            FRAGMENTY_LOG_LEVEL="WARNING",
        )
        # Starting a process does not block; the service runs until the benchmark ends.
        process = subprocess.Popen(  # noqa: ASYNC220
            [sys.executable, "-m", "fragmenty_alerts"], env=environment, cwd=REPO_ROOT
        )
        async with httpx.AsyncClient() as http:
            deadline = time.monotonic() + 120
            while True:
                try:
                    if (
                        await http.get(f"http://127.0.0.1:{alerts_port}/readyz")
                    ).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("the alerts service did not get ready")
                await asyncio.sleep(0.2)
        await broker.connect()
        reference = RuleIndex()
        for rule in compiled(specs):
            reference.put(rule)
        expected = 0
        total = int(arguments.rate * arguments.seconds)
        log(f"publishing {total} events at {arguments.rate}/s ...")
        started = time.monotonic()
        events_chooser = random.Random(99)
        for number in range(total):
            due = started + number / arguments.rate
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            event = make_event(events_chooser, datetime.now(UTC))
            expected += len(reference.matching(event))
            published[event.event_id] = time.time()
            await broker.publish(
                event.model_dump(mode="json"),
                exchange=topology.events_exchange,
                routing_key=event.routing_key,
                headers={PUBLISHED_AT_HEADER: f"{time.time():.6f}"},
                persist=True,
            )
        deadline = time.monotonic() + 60
        while len(webhook_ids) < expected and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.2)
        return {
            "bench": "alerts",
            "rules": arguments.rules,
            "accounts": arguments.accounts,
            "events_per_s": arguments.rate,
            "seconds": arguments.seconds,
            "events": total,
            "expected": expected,
            "deliveries": len(webhook_ids),
            "latency_ms": {
                "p50": round(percentile(latencies, 0.50), 1),
                "p95": round(percentile(latencies, 0.95), 1),
                "p99": round(percentile(latencies, 0.99), 1),
                "max": round(max(latencies), 1) if latencies else None,
            },
            "target_p99_ms": 250,
            "matching_us_per_event": matching,
        }
    finally:
        if process is not None:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        await runner.cleanup()
        if broker._connection is not None:
            await delete_namespace_queues(broker, topology)
            await broker.stop()
        await mongo.drop_database(settings.mongodb_database)
        await mongo.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rules", type=int, default=10_000)
    parser.add_argument("--accounts", type=int, default=1_000)
    parser.add_argument("--rate", type=float, default=50.0, help="events per second")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument(
        "--quick", action="store_true", help="500 rules, 50 accounts, 20 events/s for 10 s"
    )
    arguments = parser.parse_args()
    if arguments.quick:
        arguments.rules, arguments.accounts, arguments.rate, arguments.seconds = 500, 50, 20.0, 10.0
    print(json.dumps(asyncio.run(run(arguments))))


if __name__ == "__main__":
    main()
