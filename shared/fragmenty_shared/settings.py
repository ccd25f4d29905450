"""Settings read from the environment (prefix ``FRAGMENTY_``); ``.env.example`` documents each one.

Every service builds one ``Settings`` (or a subclass with its own fields) in its composition root
and passes it down; nothing reads the environment anywhere else.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from fragmenty_shared.event_loop import LoopChoice


class Settings(BaseSettings):
    """What every service needs: where the broker and the database are, and how to log."""

    model_config = SettingsConfigDict(
        env_prefix="FRAGMENTY_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    rabbitmq_url: str = Field(
        default="amqp://guest:guest@127.0.0.1:5672/",
        description="AMQP URL of the RabbitMQ broker.",
    )
    mongodb_url: str = Field(
        default="mongodb://127.0.0.1:27017/",
        description="MongoDB (or FerretDB) connection string.",
    )
    mongodb_database: str = Field(
        default="fragmenty",
        pattern=r"^[A-Za-z0-9_-]{1,48}$",
        description="Database that holds listings, history, events and rollups.",
    )
    namespace: str = Field(
        default="",
        pattern=r"^[a-z0-9_-]{0,32}$",
        description=(
            "Prefix for every exchange and queue name; empty in production. Tests set it so "
            "that runs sharing one broker never see each other's messages."
        ),
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="Lowest log level written."
    )
    log_json: bool = Field(default=False, description="Write logs as JSON lines (one per record).")
    event_loop: LoopChoice = Field(
        default="uvloop",
        description=(
            "Event loop of the asyncio services: uvloop (socket I/O in C; asyncio's own where "
            "uvloop is not installed) or asyncio."
        ),
    )
    host: str = Field(
        default="127.0.0.1", description="Address the service's HTTP endpoints listen on."
    )
    api_port: int = Field(default=8000, ge=1, le=65535, description="Port of the api service.")
    notifier_port: int = Field(
        default=8001, ge=1, le=65535, description="Port of the notifier (WebSocket) service."
    )
    ingest_port: int = Field(
        default=8002, ge=1, le=65535, description="Port of ingest's health and metrics endpoints."
    )
    crawler_port: int = Field(
        default=8003, ge=1, le=65535, description="Port of the looping crawler's health/metrics."
    )
    alerts_port: int = Field(
        default=8004, ge=1, le=65535, description="Port of the alerts service (API, feeds, ops)."
    )
    http_max_header_bytes: int = Field(
        default=16_384,
        ge=1_024,
        le=1_048_576,
        description=(
            "Largest request line plus headers an HTTP endpoint reads; more is refused with 431 "
            "(every service, WebSocket handshakes included)."
        ),
    )
    http_max_headers: int = Field(
        default=100,
        ge=8,
        le=1_000,
        description="Most header fields in one HTTP request; more is refused with 431.",
    )
