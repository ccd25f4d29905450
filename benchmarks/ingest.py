"""Ingest throughput: the real service against the database's own limit and the seed's way.

    uv run python benchmarks/ingest.py [--listings 20000] [--seed-sample 500] [--page-rows 500]
    uv run python benchmarks/ingest.py --quick          # 2,000 listings: proves it works

The crawl is published as the crawler sends it: one ``ListingsObserved`` message per page of
``--page-rows`` rows (Fragment's pages hold 500), then its ``CensusCompleted``.

Prints one JSON line:

- ``pipeline_per_s``: listings per second from the first publish to RabbitMQ until all of them
  (and their events, history, rollups and the crawl's census) are durable in the database,
  through the real ingest service (``python -m fragmenty_ingest``, default settings);
- ``raw_db_per_s``: the same database writes ingest makes for those listings (outbox, events,
  history, listings, census, rollups, outbox clean-up), issued directly as bulk operations
  from one process: this server's limit for this work;
- ``seed_style_per_s``: one ``update_one`` upsert per listing, awaited one by one, as the
  original Fragmenty seeded its database (estimated from ``--seed-sample`` upserts into an empty
  and into a full collection, see :func:`seed_style`);
- ``steady_state_s`` / ``steady_state_writes``: re-ingesting the unchanged census (a second
  crawl that sees the same market), and the listing writes it caused (should be 0).

Needs RabbitMQ and the database running (``scripts/infra.sh up``); uses its own namespace and
databases and removes them afterwards. Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from fragmenty_ingest.decide import decide_observation  # noqa: E402
from fragmenty_ingest.plan import WritePlan  # noqa: E402
from fragmenty_ingest.settings import IngestSettings  # noqa: E402
from fragmenty_ingest.state import listing_document_fields  # noqa: E402
from fragmenty_ingest.store import BatchDocuments, IngestStore  # noqa: E402
from fragmenty_shared.broker import declare_listings_topology, make_broker  # noqa: E402
from fragmenty_shared.contracts import (  # noqa: E402
    Asset,
    CensusCompleted,
    CensusView,
    ListingObserved,
    ListingsObserved,
    ListingStatus,
    pages_of,
)
from fragmenty_shared.settings import Settings  # noqa: E402
from fragmenty_shared.storage import make_mongo_client  # noqa: E402
from fragmenty_shared.topology import CENSUS_ROUTING_KEY, Topology, observed_routing_key  # noqa: E402
from tests.support.broker_cleanup import delete_namespace_queues  # noqa: E402
from tests.support.private_servers import free_port  # noqa: E402

START = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
# The raw writes come in the batches ingest makes (FRAGMENTY_INGEST_BATCH_SIZE, read the same way).
BATCH = IngestSettings().ingest_batch_size


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds a process has used so far (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pids_of(executable_name: str) -> list[int]:
    """Processes whose executable's name starts so (the local RabbitMQ's beam.smp, FerretDB)."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                name = os.path.basename(os.readlink(f"/proc/{entry}/exe"))
            except OSError:
                continue
            if name.startswith(executable_name):
                pids.append(int(entry))
    return pids


class CpuMeter:
    """CPU seconds used by each part of a phase, from /proc.

    On a small machine the parts share the cores: where the CPU goes says what bounds the
    pipeline once the database is not the slowest part.
    """

    def __init__(self, ingest_pid: int | None = None) -> None:
        self._parts = {
            "ingest": [ingest_pid] if ingest_pid else [],
            "database": pids_of("ferretdb") + pids_of("mongod"),
            "rabbitmq": pids_of("beam.smp"),
            "benchmark": [os.getpid()],  # the publisher, or the raw writer
        }
        self._start = self._read()

    def _read(self) -> dict[str, float]:
        return {part: sum(map(process_cpu_s, pids)) for part, pids in self._parts.items()}

    def used(self) -> dict[str, float]:
        now = self._read()
        return {part: round(now[part] - self._start[part], 2) for part in now if self._parts[part]}


def log(message: str) -> None:
    print(f"bench ingest: {message}", file=sys.stderr, flush=True)


Message = ListingsObserved | ListingObserved | CensusCompleted


def market(
    listings: int, crawl_id: str, at: datetime, page_rows: int
) -> list[ListingObserved | CensusCompleted]:
    """A crawl of ``listings`` numbers on auction and its census (a page's rows share a time)."""
    observations: list[ListingObserved | CensusCompleted] = [
        ListingObserved(
            crawl_id=crawl_id,
            observed_at=at + timedelta(milliseconds=index // page_rows),
            asset=Asset.NUMBER,
            slug=f"888{index:08d}",
            title=f"+888 {index:04d} {index % 10000:04d}",
            status=ListingStatus.AUCTION,
            price_ton=Decimal(100 + index % 5000),
            price_usd=None,
            ton_usd_rate=Decimal("5.5"),
            ends_at=START + timedelta(days=3, minutes=index % 1440),
            url=f"https://fragment.com/number/888{index:08d}",
        )
        for index in range(listings)
    ]
    observations.append(
        CensusCompleted(
            crawl_id=crawl_id,
            started_at=at - timedelta(seconds=1),
            completed_at=at + timedelta(milliseconds=listings + 1),
            views=[
                CensusView(
                    asset=Asset.NUMBER,
                    status=ListingStatus.AUCTION,
                    rows=listings,
                    pages=max(1, -(-listings // page_rows)),
                    complete=True,
                )
            ],
        )
    )
    return observations


async def raw_db(settings: Settings, observations: list[Any]) -> tuple[float, dict[str, float]]:
    """The same writes, straight to the database as bulk operations; returns seconds and the
    CPU seconds used."""
    plan = WritePlan()
    for observation in observations:
        if isinstance(observation, ListingObserved):
            decision = decide_observation(None, observation)
            assert decision.state is not None
            plan.add_listing_write(
                decision.state, details=None, is_new=True, events=decision.events
            )
    plan.number_events(1)
    client = make_mongo_client(settings.mongodb_url)
    store = IngestStore(client[settings.mongodb_database])
    try:
        await store.ensure_indexes()
        meter = CpuMeter()
        started = time.perf_counter()
        last_seq = 0
        for batch in plan_batches(plan, BATCH):
            documents = BatchDocuments.of(batch.outbox, last_seq)
            outbox_ids = await store.write_outbox(documents)
            await store.apply(batch, documents)
            await store.delete_outbox(outbox_ids)
            last_seq = documents.last_seq or last_seq
        return time.perf_counter() - started, meter.used()
    finally:
        await client.drop_database(settings.mongodb_database)
        await client.close()


def plan_batches(plan: WritePlan, size: int) -> list[WritePlan]:
    """The plan cut into ingest-sized batches (one event and one listing per observation)."""
    batches = []
    keys = list(plan.listing_sets)
    for start in range(0, len(keys), size):
        batch = WritePlan()
        for key in keys[start : start + size]:
            batch.listing_sets[key] = plan.listing_sets[key]
        batch.new_listing_ids = set(keys[start : start + size])
        batch.outbox = plan.outbox[start : start + size]
        batch.events = plan.events[start : start + size]
        batch._keyed_events = plan._keyed_events[start : start + size]
        batches.append(batch)
    batches[-1].census = plan.census
    batches[-1].closes = plan.closes
    return batches


async def seed_style(settings: Settings, observations: list[Any], sample: int) -> dict[str, float]:
    """One awaited ``update_one`` upsert per listing, as the seed did; returns listings per second.

    Running all 20,000 one by one would take many minutes: on FerretDB each update scans the
    collection, so an upsert gets slower as the collection grows. So ``sample`` upserts are
    timed into an empty collection and ``sample`` more into one that already holds the other
    listings (inserted in bulk, untimed); with the cost growing linearly with the collection,
    the mean of the two per-upsert times is the mean over a full seed.
    """
    client = make_mongo_client(settings.mongodb_url)
    listings = client[settings.mongodb_database]["listings"]
    try:
        documents = []
        for observation in observations:
            state = decide_observation(None, observation).state
            assert state is not None
            documents.append({"_id": state.listing_id, **listing_document_fields(state)})

        async def upserts(batch: list[dict[str, Any]]) -> float:
            started = time.perf_counter()
            for document in batch:
                fields = {key: value for key, value in document.items() if key != "_id"}
                await listings.update_one({"_id": document["_id"]}, {"$set": fields}, upsert=True)
            return (time.perf_counter() - started) / len(batch)

        first = await upserts(documents[:sample])
        await listings.insert_many(documents[sample:-sample])
        last = await upserts(documents[-sample:])
        return {"per_s": 2 / (first + last), "first_per_s": 1 / first, "last_per_s": 1 / last}
    finally:
        await client.drop_database(settings.mongodb_database)
        await client.close()


class IngestService:
    """The real ingest service, as a separate process."""

    def __init__(self, settings: Settings, profile_to: Path | None = None) -> None:
        self.port = free_port()
        self.profile_to = profile_to
        env = dict(os.environ)
        env.update(
            FRAGMENTY_RABBITMQ_URL=settings.rabbitmq_url,
            FRAGMENTY_MONGODB_URL=settings.mongodb_url,
            FRAGMENTY_MONGODB_DATABASE=settings.mongodb_database,
            FRAGMENTY_NAMESPACE=settings.namespace,
            FRAGMENTY_INGEST_PORT=str(self.port),
            FRAGMENTY_LOG_LEVEL=os.environ.get("FRAGMENTY_LOG_LEVEL", "WARNING"),
        )
        self.env = env
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        # With a profile path, ingest runs under cProfile (written when it stops on SIGTERM).
        profiling = ["-m", "cProfile", "-o", str(self.profile_to)] if self.profile_to else []
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, *profiling, "-m", "fragmenty_ingest", cwd=REPO_ROOT, env=self.env
        )
        async with httpx.AsyncClient() as client:
            for _ in range(300):
                try:
                    if (await client.get(self.url("/readyz"))).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.2)
        raise RuntimeError("ingest did not become ready")

    async def settled(self) -> None:
        """Wait for ingest's start-up work in the background: its first valuation fit reads
        every stored listing and values each in a thread, which would otherwise be timed as
        part of whatever the benchmark measures next."""
        for _ in range(600):
            if await self.metric("fragmenty_ingest_valuation_refits_total") >= 1:
                return
            await asyncio.sleep(0.2)
        raise RuntimeError("ingest's first valuation fit did not finish")

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def metric(self, name: str) -> float:
        """One sample of ingest's /metrics (0 when absent)."""
        async with httpx.AsyncClient() as client:
            text = (await client.get(self.url("/metrics"))).text
        for line in text.splitlines():
            if line.startswith(f"{name} "):
                return float(line.split()[1])
        return 0.0

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            await asyncio.wait_for(self.process.wait(), 30)


def on_the_wire(messages: list[Any], page_rows: int) -> list[Message]:
    """The crawl as the crawler publishes it: its observations in pages, then its census."""
    observations = [m for m in messages if isinstance(m, ListingObserved)]
    censuses = [m for m in messages if isinstance(m, CensusCompleted)]
    return [*pages_of(observations, max_rows=page_rows), *censuses]


async def publish(settings: Settings, topology: Topology, messages: list[Message]) -> None:
    broker = make_broker(settings)
    await broker.connect()
    try:
        await declare_listings_topology(broker, topology)
        for start in range(0, len(messages), 500):
            await asyncio.gather(
                *(
                    broker.publish(
                        message.model_dump_json().encode(),
                        exchange=topology.listings_exchange,
                        routing_key=CENSUS_ROUTING_KEY
                        if isinstance(message, CensusCompleted)
                        else observed_routing_key(message.asset.value),
                        persist=True,
                    )
                    for message in messages[start : start + 500]
                )
            )
    finally:
        await broker.stop()


async def until_census_durable(settings: Settings, crawl_id: str) -> None:
    """The census is the crawl's last message: once it and an empty outbox are stored, all are."""
    client = make_mongo_client(settings.mongodb_url)
    database = client[settings.mongodb_database]
    try:  # polling is the point: the database is what we are waiting for
        # Only ids come back: an outbox document is a batch's entries (hundreds of KB), and
        # the database would otherwise send it whole on every poll.
        while await database.census.find_one({"_id": crawl_id}, {"_id": 1}) is None:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        while await database.outbox.find_one({}, {"_id": 1}) is not None:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    finally:
        await client.close()


async def timed_ingest(
    settings: Settings, topology: Topology, messages: list[Message], crawl_id: str
) -> tuple[float, float]:
    """Seconds until every message is durable, and until the last one was published."""
    started = time.perf_counter()

    async def publish_timed() -> float:
        await publish(settings, topology, messages)
        return time.perf_counter() - started

    published_s, _ = await asyncio.gather(publish_timed(), until_census_durable(settings, crawl_id))
    return time.perf_counter() - started, published_s


async def cleanup(settings: Settings, topology: Topology) -> None:
    broker = make_broker(settings)
    await broker.connect()
    await delete_namespace_queues(broker, topology)
    await broker.stop()
    client = make_mongo_client(settings.mongodb_url)
    await client.drop_database(settings.mongodb_database)
    await client.close()


async def main(
    listings: int, seed_sample: int, page_rows: int, profile: Path | None
) -> dict[str, Any]:
    run_id = uuid.uuid4().hex[:8]
    base = Settings()
    first_crawl = market(listings, "bench-1", START, page_rows)
    observations = [m for m in first_crawl if isinstance(m, ListingObserved)]

    log(f"raw bulk writes of {listings} listings")
    raw_s, raw_cpu = await raw_db(
        base.model_copy(update={"mongodb_database": f"bench_raw_{run_id}"}), first_crawl
    )
    log(f"raw: {raw_s:.2f} s")

    log(f"seed style: 2 x {seed_sample} awaited upserts")
    seed = await seed_style(
        base.model_copy(update={"mongodb_database": f"bench_seed_{run_id}"}),
        observations,
        seed_sample,
    )
    seed_per_s = seed["per_s"]
    log(
        f"seed style: {seed_per_s:.0f} listings/s "
        f"(empty: {seed['first_per_s']:.0f}/s, full: {seed['last_per_s']:.0f}/s)"
    )

    settings = base.model_copy(
        update={"namespace": f"bench{run_id}", "mongodb_database": f"bench_pipe_{run_id}"}
    )
    topology = Topology(settings.namespace)
    service = IngestService(settings, profile)
    try:
        await service.start()
        await service.settled()
        log("pipeline: publishing the first crawl")
        meter = CpuMeter(service.pid)
        pipeline_s, published_s = await timed_ingest(
            settings, topology, on_the_wire(first_crawl, page_rows), "bench-1"
        )
        pipeline_cpu = meter.used()
        batches = await service.metric("fragmenty_ingest_batch_size_count")
        log(
            f"pipeline: {pipeline_s:.2f} s (the last message was published at "
            f"{published_s:.2f} s; {batches:.0f} batches)"
        )
        # Steady state: the same market crawled again, into a restarted ingest (its memory
        # warmed from the database, warm-up excluded), timed like the first crawl: from the
        # first publish until the census is durable. (Before pages, the crawl was queued
        # during the restart, to keep 20,000 publishes out of the figure; with 40 page messages
        # ingest would finish them before it answers /readyz, and the figure would read zero.)
        await service.stop()
        second_crawl = market(listings, "bench-2", START + timedelta(hours=1), page_rows)
        steady_profile = profile.with_suffix(".steady" + profile.suffix) if profile else None
        service = IngestService(settings, steady_profile)
        await service.start()
        await service.settled()
        log("steady state: publishing the same market again")
        meter = CpuMeter(service.pid)
        steady_s, _ = await timed_ingest(
            settings, topology, on_the_wire(second_crawl, page_rows), "bench-2"
        )
        steady_cpu = meter.used()
        steady_writes = await service.metric("fragmenty_ingest_listing_writes_total")
        log(f"steady state: {steady_s:.2f} s, {steady_writes:.0f} listing writes")
    finally:
        await service.stop()
        await cleanup(settings, topology)

    pipeline_per_s = listings / pipeline_s
    raw_per_s = listings / raw_s
    return {
        "bench": "ingest",
        "listings": listings,
        "page_rows": page_rows,
        "pipeline_s": round(pipeline_s, 3),
        "pipeline_per_s": round(pipeline_per_s, 1),
        "pipeline_published_s": round(published_s, 3),
        "pipeline_batches": int(batches),
        "raw_db_s": round(raw_s, 3),
        "raw_db_per_s": round(raw_per_s, 1),
        "seed_style_per_s": round(seed_per_s, 1),
        "seed_style_sample": seed_sample,
        "seed_style_empty_per_s": round(seed["first_per_s"], 1),
        "seed_style_full_per_s": round(seed["last_per_s"], 1),
        "pipeline_vs_raw": round(pipeline_per_s / raw_per_s, 3),
        "pipeline_vs_seed_style": round(pipeline_per_s / seed_per_s, 2),
        "steady_state_s": round(steady_s, 3),
        "steady_state_vs_first": round(steady_s / pipeline_s, 3),
        "steady_state_writes": int(steady_writes),
        # CPU seconds per part (ingest, database, rabbitmq, benchmark) during each phase, on
        # this many cores: a phase whose parts add up to cores x seconds was bound by the CPU.
        "cpus": os.cpu_count(),
        "raw_db_cpu_s": raw_cpu,
        "pipeline_cpu_s": pipeline_cpu,
        "steady_state_cpu_s": steady_cpu,
        "targets_met": {
            "pipeline_ge_0_7_raw": pipeline_per_s >= 0.7 * raw_per_s,
            "pipeline_ge_5x_seed_style": pipeline_per_s >= 5 * seed_per_s,
            "steady_state_lt_10pct": steady_s < 0.1 * pipeline_s,
            "steady_state_zero_writes": steady_writes == 0,
        },
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listings", type=int, default=20_000)
    parser.add_argument("--seed-sample", type=int, default=500)
    parser.add_argument(
        "--page-rows", type=int, default=500, help="rows per page message (Fragment's: 500)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="a small run (2,000 listings, 100 seed upserts)"
    )
    parser.add_argument(
        "--profile",
        type=Path,
        help="run ingest under cProfile: the first ingest's stats to this file, the steady "
        "state's next to it (NAME.steady.SUFFIX)",
    )
    arguments = parser.parse_args()
    if arguments.quick:
        arguments.listings, arguments.seed_sample = 2_000, 100
    result = asyncio.run(
        main(arguments.listings, arguments.seed_sample, arguments.page_rows, arguments.profile)
    )
    print(json.dumps(result))
