"""``/metrics`` for the whole machine when worker processes share the port.

A scrape reaches whichever worker the kernel hands the connection to, so each worker's answer
must cover all of them. Each worker writes its own metrics to a directory the parent created,
every ``WRITE_EVERY_S``; the worker that answers a scrape adds its live figures to the others'
latest files (counters, gauges and histogram buckets add up; ``_created`` takes the earliest,
``_info`` the same value). So the other workers' share is at most a second old. When a worker dies,
the parent removes its file: its counts leave the sums (Prometheus sees a counter reset).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

logger = logging.getLogger(__name__)

WRITE_EVERY_S = 1.0

SampleKey = tuple[str, tuple[tuple[str, str], ...]]


def worker_file(directory: Path, worker: int) -> Path:
    return directory / f"worker-{worker}.prom"


class WorkerMetrics(Collector):
    """This worker's registry plus every other worker's last written metrics, added up."""

    def __init__(self, registry: CollectorRegistry, directory: Path, worker: int) -> None:
        self._registry = registry
        self._directory = directory
        self._worker = worker
        self.exposed = CollectorRegistry(auto_describe=False)
        self.exposed.register(self)

    async def write_forever(self) -> None:
        own = worker_file(self._directory, self._worker)
        partial = own.with_suffix(".partial")
        while True:
            try:
                partial.write_bytes(generate_latest(self._registry))
                os.replace(partial, own)  # a reader never sees half a file
            except OSError as error:
                logger.warning("writing this worker's metrics failed: %r", error)
            await asyncio.sleep(WRITE_EVERY_S)

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


def _combine(family: Metric, sample_name: str, before: float, value: float) -> float:
    if sample_name.endswith("_created"):
        return min(before, value)
    if family.type == "info" or family.name.endswith("_info"):
        return max(before, value)
    return before + value
