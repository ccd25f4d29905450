"""Keeping the cyclic garbage collector's pauses out of the fan-out's tail.

With thousands of connections a worker holds about 150 long-lived objects per socket (uvicorn's
protocol, the WebSocket parser, the ASGI task, this service's connection): 750,000 at 5,000
sockets. A full collection walks all of them and stops the event loop for 100-300 ms on this
machine, and with CPython's default thresholds one came every few seconds: each batch's
short-lived containers, caught alive by a young collection in the middle of a fan-out pass,
were promoted and counted towards the next full collection. Measured in the fan-out
benchmark (2 workers, 5,000-10,000 batched clients): full collections of 100 ms to 1.4 s, and
the p99 followed them.

So, at start, everything imported and built so far is frozen (never walked again), and the
young generation's threshold is raised so that a fan-out pass's temporaries die before a
collection sees them. Full collections then come only as the population of connections grows
by a quarter (CPython's own rule), and each one's length is a metric.
"""

from __future__ import annotations

import gc
import time
from typing import Any

from fragmenty_notifier.metrics import FastHistogram

# Net container allocations between young collections (CPython's default is 700). A fan-out
# pass over 10,000 sockets allocates a few per socket at most.
YOUNG_THRESHOLD = 50_000


def settle_collector(pauses: FastHistogram | None = None) -> None:
    """Freeze what exists now, raise the young threshold, and time every collection."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
    if pauses is not None:
        gc.callbacks.append(_PauseTimer(pauses))


class _PauseTimer:
    """A ``gc.callbacks`` entry: each collection's length, by generation."""

    def __init__(self, pauses: FastHistogram) -> None:
        self._series = [pauses.labels(str(generation)) for generation in range(3)]
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self._series[info["generation"]].observe(time.perf_counter() - self._started)
