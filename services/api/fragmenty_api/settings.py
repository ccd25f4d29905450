"""The api's settings: the shared ones plus what only the REST API and the pages need."""

from __future__ import annotations

from pydantic import Field

from fragmenty_shared.settings import Settings


class ApiSettings(Settings):
    """Read from ``FRAGMENTY_*`` variables; ``.env.example`` documents each one."""

    notifier_public_url: str = Field(
        default="ws://127.0.0.1:8001/ws",
        pattern=r"^wss?://[^\s\"'<>]{1,200}$",
        description="WebSocket URL of the notifier as browsers reach it (pages subscribe there).",
    )
    cors_allow_origins: list[str] = Field(
        default_factory=list,
        max_length=32,
        description="Origins allowed to call the REST API from a browser (JSON list); empty: none.",
    )
    snapshot_refresh_seconds: float = Field(
        default=900.0,
        ge=0.5,
        le=86_400,
        description=(
            "How often the in-memory market snapshot is read in full from the database; price "
            "events from the broker keep it current in between."
        ),
    )
    live_updates: bool = Field(
        default=True,
        description="Consume price events from RabbitMQ to keep the snapshot current.",
    )
    expensive_requests_per_minute: int = Field(
        default=30,
        ge=1,
        le=100_000,
        description="Per-client limit on export and stats requests (token bucket, per minute).",
    )
    valuation_refit_seconds: float = Field(
        default=300.0,
        ge=0.5,
        le=86_400,
        description=(
            "How often the valuation model is refitted from the snapshot's sales (in a worker "
            "thread; docs/valuation.md)."
        ),
    )
    map_max_points: int = Field(
        default=5000,
        ge=10,
        le=50_000,
        description="Most points the market map draws (the most memorable first).",
    )
