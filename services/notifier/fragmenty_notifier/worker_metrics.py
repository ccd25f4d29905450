"""``/metrics`` and ``/readyz`` for the whole machine when worker processes share the port.

A request reaches whichever worker the kernel hands the connection to, so each worker's answer
must cover all of them. Each worker writes its own metrics to a directory the parent created,
every ``WRITE_EVERY_S``; the worker that answers a scrape waits for the others' next files and
adds its live figures to theirs (counters, gauges and histogram buckets add up; ``_created`` takes the earliest,
``_info`` the same value). When a worker dies, the parent removes its file: its counts leave
the sums (Prometheus sees a counter reset).

Each worker also keeps whether it consumes its events queue in a small table in shared memory (:func:`peer_table`): ``/readyz`` is ready only when every worker is, so a
client that waited for readiness never lands on a worker that is not receiving events yet.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import time
from collections.abc import Callable, Iterator
from multiprocessing.sharedctypes import RawArray
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)

# Each worker writes its figures this often (a few milliseconds each time); a scrape waits for
# the others' next write, at most FRESH_WAIT_S, so what it adds up is current.
WRITE_EVERY_S = 0.1
FRESH_WAIT_S = 0.5

SampleKey = tuple[str, tuple[tuple[str, str], ...]]


def worker_file(directory: Path, worker: int) -> Path:
    return directory / f"worker-{worker}.prom"


def peer_table(workers: int) -> Any:
    """Per worker: 1 while it consumes its events queue."""
    return RawArray(ctypes.c_int32, workers)


class WorkerMetrics(Collector):
    """This worker's registry plus every other worker's last written metrics, added up."""

    def __init__(
        self,
        registry: CollectorRegistry,
        directory: Path,
        worker: int,
        peers: Any = None,
        workers: int = 1,
    ) -> None:
        self._registry = registry
        self._directory = directory
        self._worker = worker
        self._peers = peers
        self._workers = workers
        self.exposed = CollectorRegistry(auto_describe=False)
        self.exposed.register(self)

    def write_now(self) -> None:
        own = worker_file(self._directory, self._worker)
        partial = own.with_suffix(".partial")
        try:
            partial.write_bytes(generate_latest(self._registry))
            os.replace(partial, own)  # a reader never sees half a file
        except OSError as error:
            logger.warning("writing this worker's metrics failed: %r", error)

    async def run(self, consuming: Callable[[], bool]) -> None:
        """Keep this worker's file and readiness flag current."""
        try:
            while True:
                if self._peers is not None:
                    self._peers[self._worker] = int(consuming())
                self.write_now()
                await asyncio.sleep(WRITE_EVERY_S)
        finally:
            if self._peers is not None:
                self._peers[self._worker] = 0

    async def check_all_ready(self) -> None:
        """Readiness: every worker consumes its events queue."""
        if self._peers is None:
            return
        waiting = [k for k in range(self._workers) if not self._peers[k]]
        if waiting:
            raise RuntimeError(f"workers not consuming yet: {waiting}")

    async def refresh_peers(self) -> None:
        """Wait (briefly) until every other worker has written its figures since now."""
        asked = time.time()
        others = [
            worker_file(self._directory, k) for k in range(self._workers) if k != self._worker
        ]
        deadline = time.monotonic() + FRESH_WAIT_S
        while others and time.monotonic() < deadline:
            others = [path for path in others if not _written_since(path, asked)]
            if others:
                await asyncio.sleep(0.01)

    def _others(self) -> Iterator[Metric]:
        for path in sorted(self._directory.glob("worker-*.prom")):
            if path == worker_file(self._directory, self._worker):
                continue
            with contextlib.suppress(OSError, ValueError):
                yield from text_string_to_metric_families(path.read_text())

    def collect(self) -> Iterator[Metric]:
        families: dict[str, Metric] = {}
        values: dict[str, dict[SampleKey, float]] = {}
        # Its own figures go through the text form too, so that every family has the same
        # name and shape as the other workers' (an Info is a gauge named ..._info there).
        own = text_string_to_metric_families(generate_latest(self._registry).decode())
        for family in (*own, *self._others()):
            known = families.setdefault(family.name, family)
            merged = values.setdefault(family.name, {})
            for sample in family.samples:
                key = (sample.name, tuple(sorted(sample.labels.items())))
                before = merged.get(key)
                merged[key] = (
                    sample.value
                    if before is None
                    else _combine(known, sample.name, before, sample.value)
                )
        for name, family in families.items():
            out = Metric(family.name, family.documentation, family.type, family.unit)
            for (sample_name, labels), value in values[name].items():
                out.add_sample(sample_name, dict(labels), value)
            yield out


def _written_since(path: Path, moment: float) -> bool:
    try:
        return path.stat().st_mtime >= moment
    except OSError:
        return False


def _combine(family: Metric, sample_name: str, before: float, value: float) -> float:
    if sample_name.endswith("_created"):
        return min(before, value)
    if family.type == "info" or family.name.endswith("_info"):
        return max(before, value)
    return before + value
