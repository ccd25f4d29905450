"""The alerts service's Prometheus metrics, on a registry of its own (see fragmenty_shared.metrics)."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from fragmenty_shared.metrics import LATENCY_BUCKETS, new_registry


@dataclass(frozen=True)
class AlertsMetrics:
    registry: CollectorRegistry
    events: Counter
    events_refused: Counter
    matched: Counter
    suppressed: Counter
    sent: Counter
    failed: Counter
    retried: Counter
    disabled_endpoints: Counter
    match_seconds: Histogram
    delivery_seconds: Histogram
    rules: Gauge
    outbox: Gauge


def create_metrics() -> AlertsMetrics:
    registry = new_registry("alerts")
    prefix = "fragmenty_alerts"
    return AlertsMetrics(
        registry=registry,
        events=Counter(f"{prefix}_events_total", "Price events consumed.", registry=registry),
        events_refused=Counter(
            f"{prefix}_events_refused_total",
            "Events refused: malformed, or not provably from a complete observation.",
            ["reason"],
            registry=registry,
        ),
        matched=Counter(
            f"{prefix}_matched_total",
            "Rule matches that fired an alert.",
            ["mode"],
            registry=registry,
        ),
        suppressed=Counter(
            f"{prefix}_suppressed_total",
            "Matches that did not fire: threshold not re-armed, cooldown, daily cap.",
            ["reason"],
            registry=registry,
        ),
        sent=Counter(f"{prefix}_sent_total", "Deliveries sent.", ["kind"], registry=registry),
        failed=Counter(
            f"{prefix}_failed_total", "Delivery attempts that failed.", ["kind"], registry=registry
        ),
        retried=Counter(
            f"{prefix}_retried_total",
            "Delivery attempts after the first.",
            ["kind"],
            registry=registry,
        ),
        disabled_endpoints=Counter(
            f"{prefix}_disabled_endpoints_total",
            "Channels disabled (410, or failing too long).",
            registry=registry,
        ),
        match_seconds=Histogram(
            f"{prefix}_match_seconds",
            "Matching one event against the rule index.",
            registry=registry,
            buckets=(0.00001, 0.00005, 0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05),
        ),
        delivery_seconds=Histogram(
            f"{prefix}_delivery_seconds",
            "From the event's publication to a successful delivery.",
            ["kind"],
            registry=registry,
            buckets=LATENCY_BUCKETS,
        ),
        rules=Gauge(f"{prefix}_rules", "Active rules in this instance's index.", registry=registry),
        outbox=Gauge(
            f"{prefix}_outbox_due",
            "Deliveries due for a retry at the last poll.",
            registry=registry,
        ),
    )
