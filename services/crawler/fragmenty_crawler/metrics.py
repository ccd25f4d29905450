"""The crawler's Prometheus metrics (prefix ``fragmenty_crawler_``), on a registry of its own."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from fragmenty_shared.metrics import new_registry


class CrawlerMetrics:
    """Pages, rows, parse failures, view completeness, census duration, published messages."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or new_registry("crawler")
        r = self.registry
        self.pages = Counter(
            "fragmenty_crawler_pages",
            "Pages and API answers fetched.",
            ["asset", "status", "kind"],
            registry=r,
        )
        self.rows = Counter(
            "fragmenty_crawler_rows", "Listing rows parsed.", ["asset", "status"], registry=r
        )
        self.parse_failures = Counter(
            "fragmenty_crawler_parse_failures",
            "Pages or rows that could not be read.",
            ["reason"],
            registry=r,
        )
        self.duplicate_rows = Counter(
            "fragmenty_crawler_duplicate_rows",
            "Rows seen twice in one view (the order moved between pages).",
            ["asset", "status"],
            registry=r,
        )
        self.retries = Counter(
            "fragmenty_crawler_retries", "Requests retried after 429/5xx.", ["status"], registry=r
        )
        self.item_pages = Counter(
            "fragmenty_crawler_item_pages",
            "Item pages fetched, by outcome.",
            ["outcome"],
            registry=r,
        )
        self.published = Counter(
            "fragmenty_crawler_published_messages",
            "Messages confirmed by RabbitMQ.",
            ["kind"],
            registry=r,
        )
        self.view_complete = Gauge(
            "fragmenty_crawler_view_complete",
            "1 if the last census of the view was complete, else 0.",
            ["asset", "status"],
            registry=r,
        )
        self.view_rows = Gauge(
            "fragmenty_crawler_view_rows",
            "Rows in the view at the last census.",
            ["asset", "status"],
            registry=r,
        )
        self.census_duration = Histogram(
            "fragmenty_crawler_census_duration_seconds",
            "Wall time of one census.",
            buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1200, 3600),
            registry=r,
        )
        self.censuses = Counter(
            "fragmenty_crawler_censuses", "Censuses run, by outcome.", ["outcome"], registry=r
        )
        self.last_census = Gauge(
            "fragmenty_crawler_last_census_timestamp_seconds",
            "When the last census ended.",
            registry=r,
        )
