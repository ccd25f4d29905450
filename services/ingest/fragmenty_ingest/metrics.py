"""Ingest's Prometheus metrics, against a registry of its own (see fragmenty_shared.metrics)."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from fragmenty_shared.metrics import LATENCY_BUCKETS, new_registry

BATCH_SIZE_BUCKETS = (1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000)


class IngestMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or new_registry("ingest")
        r = self.registry
        self.consumed = Counter(
            "fragmenty_ingest_messages_consumed",
            "Valid messages received, by kind (listings_observed: a page of rows).",
            ["kind"],
            registry=r,
        )
        self.observations = Counter(
            "fragmenty_ingest_observations_consumed",
            "Valid observations received (the rows of pages and one-row messages).",
            registry=r,
        )
        self.changes = Counter(
            "fragmenty_ingest_changes", "Events produced, by event type.", ["type"], registry=r
        )
        self.dead_lettered = Counter(
            "fragmenty_ingest_dead_lettered",
            "Poison messages (and bad rows of pages) sent to the dead-letter queue, by reason.",
            ["reason"],
            registry=r,
        )
        self.listing_writes = Counter(
            "fragmenty_ingest_listing_writes", "Listing documents written.", registry=r
        )
        self.batch_size = Histogram(
            "fragmenty_ingest_batch_size",
            "Observations (a census counts one) per batch.",
            buckets=BATCH_SIZE_BUCKETS,
            registry=r,
        )
        self.batch_latency = Histogram(
            "fragmenty_ingest_batch_seconds",
            "Time from a batch's first message to its acknowledgement.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.outbox_depth = Gauge(
            "fragmenty_ingest_outbox_depth",
            "Events written but not yet confirmed published.",
            registry=r,
        )
        self.retries = Counter(
            "fragmenty_ingest_retries",
            "Retried operations, by dependency.",
            ["dependency"],
            registry=r,
        )
        self.relayed = Counter(
            "fragmenty_ingest_relayed_events", "Events republished from the outbox.", registry=r
        )
        self.valuation_sales = Gauge(
            "fragmenty_ingest_valuation_sales",
            "Sales the valuation model on events was last fitted on (0: events carry no value).",
            registry=r,
        )
        self.valuation_refits = Counter(
            "fragmenty_ingest_valuation_refits",
            "Fits of the valuation model on events that succeeded (the first follows start-up).",
            registry=r,
        )
        self._last_message = time.monotonic()
        Gauge(
            "fragmenty_ingest_seconds_since_last_message",
            "Seconds since the last message arrived.",
            registry=r,
        ).set_function(lambda: time.monotonic() - self._last_message)

    def message_arrived(self) -> None:
        self._last_message = time.monotonic()
