"""The notifier's Prometheus metrics, created against a registry of its own."""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.metrics_core import HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from fragmenty_shared.metrics import LATENCY_BUCKETS, new_registry

if TYPE_CHECKING:
    from fragmenty_notifier.frames import Frame

# Fan-out should be milliseconds; finer buckets at the low end than the shared default.
FANOUT_BUCKETS = (0.0005, *LATENCY_BUCKETS)
GC_PAUSE_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class HistogramSeries:
    """One labelled series: plain counts, no lock (the notifier observes from one thread)."""

    __slots__ = ("_bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self._bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one is +Inf
        self.sum = 0.0

    def observe(self, amount: float) -> None:
        self.observe_many(amount, 1)

    def observe_many(self, amount: float, count: int) -> None:
        """``count`` observations of the same ``amount`` (copies of one frame, written together)."""
        # Prometheus buckets are "less than or equal": the first bound >= amount.
        self.counts[bisect_left(self._bounds, amount)] += count
        self.sum += amount * count


class FastHistogram(Collector):
    """A histogram for the fan-out's hot path, where one observation stands for many frames.

    prometheus_client's Histogram takes a lock and a few calls per observation and cannot count
    many at once: when one event goes to thousands of sockets, the fan-out observes the copies
    written together in one call (``observe_many``). Exposed the same way.
    """

    def __init__(
        self,
        name: str,
        documentation: str,
        label: str,
        label_values: Sequence[str],
        buckets: Sequence[float],
        registry: CollectorRegistry,
    ) -> None:
        self._name = name
        self._documentation = documentation
        self._label = label
        self._bounds = tuple(sorted(buckets))
        self._series = {value: HistogramSeries(self._bounds) for value in label_values}
        registry.register(self)

    def labels(self, value: str) -> HistogramSeries:
        return self._series[value]

    def collect(self) -> Iterator[Metric]:
        family = HistogramMetricFamily(self._name, self._documentation, labels=[self._label])
        for value, series in self._series.items():
            cumulative, buckets = 0, []
            for bound, count in zip((*self._bounds, float("inf")), series.counts, strict=True):
                cumulative += count
                buckets.append(("+Inf" if bound == float("inf") else repr(bound), cumulative))
            family.add_metric([value], buckets, series.sum)
        yield family


class FrameAccounting:
    """Counting frames once they are written: events out, and each live frame's fan-out latency.

    A live event may go to thousands of sockets; the fan-out counts the copies of a batch
    written together in one call (``copies``), with one clock reading, instead of once per
    socket. One per process (``NotifierMetrics.frames_written``): the labelled series are
    looked up once, not once per connection.
    """

    __slots__ = (
        "_catch_up_saved",
        "_catch_up_writes",
        "_latency_published",
        "_latency_received",
        "_live_out",
        "_replay_out",
    )

    def __init__(
        self, events_out: Counter, fanout_latency: FastHistogram, catch_up: Counter
    ) -> None:
        self._catch_up_writes = catch_up.labels("writes")
        self._catch_up_saved = catch_up.labels("frames_saved")
        self._live_out = events_out.labels("live")
        self._replay_out = events_out.labels("replay")
        self._latency_published = fanout_latency.labels("published")
        self._latency_received = fanout_latency.labels("received")

    def written(self, frames: Sequence[Frame], copies: int = 1, now: float | None = None) -> None:
        """``copies`` connections were each written ``frames``, at ``now`` at the latest."""
        if copies <= 0:
            return
        if now is None:
            now = time.time()
        live = replayed = 0
        for frame in frames:
            for envelope in frame.envelopes:
                live += 1
                if envelope.published_at is not None:
                    latency, series = now - envelope.published_at, self._latency_published
                else:
                    latency, series = now - envelope.received_at, self._latency_received
                series.observe_many(max(0.0, latency), copies)
            if frame.replayed:
                replayed += 1
        if live:
            self._live_out.inc(live * copies)
        if replayed:
            self._replay_out.inc(replayed * copies)

    def caught_up(self, waited: int, written: int) -> None:
        """Frames that waited for a client that was behind went out together."""
        self._catch_up_writes.inc()
        self._catch_up_saved.inc(waited - written)


@dataclass(frozen=True)
class NotifierMetrics:
    registry: CollectorRegistry
    connections: Gauge
    subscriptions: Gauge
    events_in: Counter
    duplicates_dropped: Counter
    events_out: Counter
    clients_dropped: Counter
    handshakes_refused: Counter
    client_errors: Counter
    fanout_latency: FastHistogram
    broker_reconnects: Counter
    replayed_events: Counter
    catch_up: Counter
    gc_pauses: FastHistogram

    @cached_property
    def frames_written(self) -> FrameAccounting:
        return FrameAccounting(self.events_out, self.fanout_latency, self.catch_up)


def create_metrics() -> NotifierMetrics:
    registry = new_registry("notifier")
    return NotifierMetrics(
        registry=registry,
        connections=Gauge(
            "fragmenty_notifier_connections",
            "Open WebSocket connections, by endpoint.",
            ["endpoint"],
            registry=registry,
        ),
        subscriptions=Gauge(
            "fragmenty_notifier_subscriptions",
            "Active subscriptions over all connections.",
            registry=registry,
        ),
        events_in=Counter(
            "fragmenty_notifier_events_in_total",
            "Price events taken in: from the broker, or recovered from storage after a reconnect.",
            ["source"],
            registry=registry,
        ),
        duplicates_dropped=Counter(
            "fragmenty_notifier_duplicate_events_total",
            "Events dropped because this instance had already fanned out their event_id.",
            registry=registry,
        ),
        events_out=Counter(
            "fragmenty_notifier_events_out_total",
            "Event frames written to clients: live, or replayed for a ?since= resume.",
            ["source"],
            registry=registry,
        ),
        clients_dropped=Counter(
            "fragmenty_notifier_clients_dropped_total",
            "Connections closed by the notifier, by reason.",
            ["reason"],
            registry=registry,
        ),
        handshakes_refused=Counter(
            "fragmenty_notifier_handshakes_refused_total",
            "WebSocket handshakes refused, by reason.",
            ["reason"],
            registry=registry,
        ),
        client_errors=Counter(
            "fragmenty_notifier_client_errors_total",
            "Malformed or refused client frames answered with an error frame.",
            registry=registry,
        ),
        fanout_latency=FastHistogram(
            "fragmenty_notifier_fanout_latency_seconds",
            "From the event's publication (origin=published, from the publisher's header) or "
            "its arrival here (origin=received, when the header is missing) to the frame written.",
            "origin",
            ("published", "received"),
            FANOUT_BUCKETS,
            registry,
        ),
        broker_reconnects=Counter(
            "fragmenty_notifier_broker_reconnects_total",
            "Times the event queue was restored after the broker connection was lost.",
            registry=registry,
        ),
        catch_up=Counter(
            "fragmenty_notifier_catch_up_total",
            "Frames that waited for a client that was behind went out together: the writes, and "
            "the frames saved by merging batched subscriptions' events frames.",
            ["what"],
            registry=registry,
        ),
        replayed_events=Counter(
            "fragmenty_notifier_recovered_events_total",
            "Stored events fanned out after a broker reconnect because they never arrived live.",
            registry=registry,
        ),
        gc_pauses=FastHistogram(
            "fragmenty_notifier_gc_pause_seconds",
            "How long each cyclic garbage collection stopped the event loop, by generation "
            "(2: a full collection, which walks every connection's objects).",
            "generation",
            ("0", "1", "2"),
            GC_PAUSE_BUCKETS,
            registry,
        ),
    )
