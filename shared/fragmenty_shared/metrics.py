"""Prometheus helpers: one registry per service, served at ``/metrics``.

Each service creates its metrics in its own ``metrics.py`` against a registry made here, so tests
can build a fresh service (and a fresh registry) without "duplicated timeseries" errors.
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Info, generate_latest

METRICS_CONTENT_TYPE = CONTENT_TYPE_LATEST

# Buckets for work that takes milliseconds to seconds: batch writes, fan-out, HTTP requests.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def new_registry(service: str, version: str = "0.1.0") -> CollectorRegistry:
    """A registry that already says which service and version it belongs to."""
    registry = CollectorRegistry(auto_describe=True)
    Info("fragmenty_build", "Service name and version.", registry=registry).info(
        {"service": service, "version": version}
    )
    return registry


def render(registry: CollectorRegistry) -> bytes:
    """The registry in Prometheus' text exposition format."""
    return generate_latest(registry)
