"""Ingest's settings: the shared ones plus batching and relay timing (``FRAGMENTY_INGEST_*``)."""

from __future__ import annotations

from pydantic import Field

from fragmenty_shared.settings import Settings


class IngestSettings(Settings):
    ingest_batch_size: int = Field(
        default=500,
        ge=1,
        le=10_000,
        description="Rows after which a batch closes (a page message is never split).",
    )
    ingest_batch_linger_ms: int = Field(
        default=50,
        ge=0,
        le=10_000,
        description="How long a batch waits for more messages before it is written.",
    )
    ingest_prefetch: int = Field(
        default=100,
        ge=1,
        le=65_535,
        description=(
            "Unacknowledged deliveries RabbitMQ may send. A delivery is a page of up to 500 rows "
            "(about 150 KB): 100 bound what waits in memory to about 15 MB."
        ),
    )
    ingest_relay_interval_s: float = Field(
        default=10.0, gt=0, description="How often leftover outbox entries are republished."
    )
    ingest_valuation_refit_seconds: float = Field(
        default=600.0,
        ge=0,
        le=86_400,
        description=(
            "How often the fair-value model put on price events is refitted from the stored "
            "sales (a pass over listings, fitted in a worker thread); 0: events carry no value."
        ),
    )
    ingest_retry_max_backoff_s: float = Field(
        default=5.0, gt=0, description="Longest wait between retries while the database is down."
    )
    ingest_event_window: int = Field(
        default=2_000,
        ge=100,
        le=1_000_000,
        description="Newest events kept in the event log's window (event_log); older ones move "
        "to event_archive in blocks. Resumes and the REST feed within the window never read "
        "the archive.",
    )
    ingest_history_rows: int = Field(
        default=200,
        ge=10,
        le=5_000,
        description="Newest events kept in a listing's history document; older ones move to "
        "history_archive blocks (read only for that listing's full history).",
    )
