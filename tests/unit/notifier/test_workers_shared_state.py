"""What worker processes share: connection counts for the limits, and /metrics."""

from __future__ import annotations

from pathlib import Path

import httpx
from prometheus_client import generate_latest

from fragmenty_notifier.admission import SharedCounts, clear_row, shared_table
from fragmenty_notifier.main import WorkerPlace, build_notifier
from fragmenty_notifier.metrics import create_metrics
from fragmenty_notifier.settings import NotifierSettings
from fragmenty_notifier.worker_metrics import WorkerMetrics, peer_table, worker_file


def test_counts_add_up_over_workers_and_a_dead_workers_row_is_cleared() -> None:
    table = shared_table(3)
    workers = [SharedCounts(table, 3, index) for index in range(3)]
    workers[0].opened("203.0.113.1")
    workers[1].opened("203.0.113.1")
    workers[2].opened("203.0.113.2")
    assert [w.of("203.0.113.1") for w in workers] == [2, 2, 2]  # every worker sees the machine
    assert workers[0].total() == 3
    workers[1].closed("203.0.113.1")
    assert workers[2].of("203.0.113.1") == 1
    clear_row(table, 2)  # worker 2 died: what it counted is gone
    assert workers[0].of("203.0.113.2") == 0
    assert workers[0].total() == 1


def test_metrics_of_every_worker_add_up(tmp_path: Path) -> None:
    mine, other = create_metrics(), create_metrics()
    mine.connections.labels("ws").inc(3)
    other.connections.labels("ws").inc(4)
    other.events_in.labels("broker").inc(7)
    other.fanout_latency.labels("published").observe(0.002)
    worker_file(tmp_path, 1).write_bytes(generate_latest(other.registry))

    exposed = WorkerMetrics(mine.registry, tmp_path, 0).exposed
    sample = exposed.get_sample_value
    assert sample("fragmenty_notifier_connections", {"endpoint": "ws"}) == 7
    assert sample("fragmenty_notifier_events_in_total", {"source": "broker"}) == 7
    assert sample("fragmenty_build_info", {"service": "notifier", "version": "0.1.0"}) == 1
    bucket = {"origin": "published", "le": "0.0025"}
    assert sample("fragmenty_notifier_fanout_latency_seconds_bucket", bucket) == 1
    assert b'fragmenty_notifier_connections{endpoint="ws"} 7.0' in generate_latest(exposed)


async def test_readiness_waits_for_every_worker_of_the_place(tmp_path: Path) -> None:
    # The worker is built with its place: its /readyz must read the peers' table, or a client
    # that waited for readiness can land on a worker that does not consume yet.
    peers = peer_table(2)
    place = WorkerPlace(0, 2, shared_table(2), peers, tmp_path)
    notifier = build_notifier(NotifierSettings(), place)
    # No lifespan: nothing connects; only the readiness checks run.
    transport = httpx.ASGITransport(app=notifier.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://notifier") as client:
        peers[0] = 1
        checks = (await client.get("/readyz")).json()["checks"]
        assert checks["workers"] != "ok"
        assert "[1]" in checks["workers"]
        peers[1] = 1
        assert (await client.get("/readyz")).json()["checks"]["workers"] == "ok"
