"""The notifier's Prometheus metrics, created against a registry of its own."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from fragmenty_shared.metrics import LATENCY_BUCKETS, new_registry

# Fan-out should be milliseconds; finer buckets at the low end than the shared default.
FANOUT_BUCKETS = (0.0005, *LATENCY_BUCKETS)


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
    fanout_latency: Histogram
    broker_reconnects: Counter
    replayed_events: Counter


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
        fanout_latency=Histogram(
            "fragmenty_notifier_fanout_latency_seconds",
            "From the event's publication (origin=published, from the publisher's header) or "
            "its arrival here (origin=received, when the header is missing) to the frame written.",
            ["origin"],
            buckets=FANOUT_BUCKETS,
            registry=registry,
        ),
        broker_reconnects=Counter(
            "fragmenty_notifier_broker_reconnects_total",
            "Times the event queue was restored after the broker connection was lost.",
            registry=registry,
        ),
        replayed_events=Counter(
            "fragmenty_notifier_recovered_events_total",
            "Stored events fanned out after a broker reconnect because they never arrived live.",
            registry=registry,
        ),
    )
