"""The notifier's settings: the shared ones plus its limits (``FRAGMENTY_NOTIFIER_*``)."""

from __future__ import annotations

import os
from typing import Literal

from pydantic import Field

from fragmenty_shared.settings import Settings


class NotifierSettings(Settings):
    """Everything the notifier reads from the environment; ``.env.example`` documents each."""

    notifier_allowed_origins: list[str] = Field(
        default=["http://localhost:8000", "http://127.0.0.1:8000"],
        description=(
            "Origins a browser may open a socket from (JSON list); '*' allows any. Checked on "
            "the handshake; a disallowed Origin gets HTTP 403."
        ),
    )
    notifier_allow_missing_origin: bool = Field(
        default=True,
        description=(
            "Accept handshakes without an Origin header. Browsers always send one, so this "
            "only lets scripts and bots in; set false to accept browsers only."
        ),
    )
    notifier_max_frame_bytes: int = Field(
        default=16 * 1024,
        ge=256,
        description="Largest frame a client may send; bigger closes 1009.",
    )
    notifier_max_subscriptions: int = Field(
        default=16, ge=1, description="Subscriptions one connection may hold at once."
    )
    notifier_max_connections_per_client: int = Field(
        default=32, ge=1, description="Open sockets per client address; more get HTTP 429."
    )
    notifier_max_connections: int = Field(
        default=10_000, ge=1, description="Open sockets in total; more get HTTP 503."
    )
    notifier_send_buffer_bytes: int = Field(
        default=256 * 1024,
        ge=1024,
        description=(
            "Bytes that may wait for one client beyond what its socket takes; a client that "
            "falls further behind is closed with 1013 (about 400 events of 600 bytes)."
        ),
    )
    notifier_ping_interval_s: float = Field(
        default=20.0, gt=0, description="Keepalive ping interval; a client that never pongs is cut."
    )
    notifier_ping_timeout_s: float = Field(
        default=20.0, gt=0, description="How long a keepalive ping may go unanswered."
    )
    notifier_max_client_errors: int = Field(
        default=20,
        ge=1,
        description="Malformed frames answered with an error before the client is closed (1008).",
    )
    notifier_max_client_frames_per_s: float = Field(
        default=20.0, gt=0, description="Sustained rate of client frames; a flood closes 1008."
    )
    notifier_max_replay_events: int = Field(
        default=50_000,
        ge=1,
        description="Most stored events one ?since= resume replays; an older point is refused.",
    )
    notifier_legacy_interval_s: float = Field(
        default=5.0,
        ge=0.05,
        description=(
            "Shortest time between two lists on the original sockets (/ws/auctions...): each "
            "message is the view's complete list, sent again when the view changed."
        ),
    )
    notifier_forwarded_allow_ips: str = Field(
        default="127.0.0.1,::1",
        description=(
            "Proxies trusted to report the client's address in X-Forwarded-For (comma list, "
            "'*' for any): behind a load balancer, per-address limits need the real client."
        ),
    )
    notifier_ws_protocol: Literal["websockets-sansio", "websockets"] = Field(
        default="websockets-sansio",
        description=(
            "uvicorn's WebSocket implementation. With websockets-sansio, frames are written "
            "straight to each socket (fast); 'websockets' (deprecated in uvicorn) goes through "
            "a queue and a writer task per connection."
        ),
    )
    notifier_workers: int = Field(
        default_factory=lambda: len(os.sched_getaffinity(0)),
        ge=1,
        le=64,
        description=(
            "Worker processes sharing the port (SO_REUSEPORT), each with its own events queue; "
            "default: the cores this process may use. Connection limits are machine-wide."
        ),
    )
    notifier_instance_id: str | None = Field(
        default=None,
        pattern=r"^[a-z0-9_-]{1,32}$",
        description="Name of this instance's event queue (notifier.<id>); random when unset.",
    )
