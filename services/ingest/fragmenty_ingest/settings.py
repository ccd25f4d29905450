"""Ingest's settings: the shared ones plus batching and relay timing (``FRAGMENTY_INGEST_*``)."""

from __future__ import annotations

from pydantic import Field

from fragmenty_shared.settings import Settings


class IngestSettings(Settings):
    ingest_batch_size: int = Field(
        default=500, ge=1, le=10_000, description="Most messages written in one batch."
    )
    ingest_batch_linger_ms: int = Field(
        default=50,
        ge=0,
        le=10_000,
        description="How long a batch waits for more messages before it is written.",
    )
    ingest_prefetch: int = Field(
        default=2000, ge=1, le=65_535, description="Unacknowledged deliveries RabbitMQ may send."
    )
    ingest_relay_interval_s: float = Field(
        default=10.0, gt=0, description="How often leftover outbox entries are republished."
    )
    ingest_retry_max_backoff_s: float = Field(
        default=5.0, gt=0, description="Longest wait between retries while the database is down."
    )
