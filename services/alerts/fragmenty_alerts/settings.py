"""The alerts service's settings: the shared ones plus ``FRAGMENTY_ALERTS_*``."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr

from fragmenty_shared.settings import Settings


class AlertsSettings(Settings):
    """Everything the alerts service reads from the environment; ``.env.example`` documents each."""

    alerts_public_url: str = Field(
        default="http://127.0.0.1:8000",
        description="Base URL of Fragmenty's pages, for the listing links in alert messages.",
    )
    alerts_prefetch: int = Field(
        default=256,
        ge=1,
        le=10_000,
        description=(
            "Unacknowledged events held by one instance (processed at once: each waits for its "
            "writes, so this bounds how many writes can share a round trip)."
        ),
    )
    alerts_rules_refresh_s: float = Field(
        default=2.0,
        gt=0,
        description="How often an instance checks whether another one changed rules or channels.",
    )
    alerts_delivery_poll_s: float = Field(
        default=1.0,
        gt=0,
        description="How often due retries and orphaned deliveries are picked up.",
    )
    alerts_delivery_lease_s: float = Field(
        default=30.0,
        gt=0,
        description=(
            "A delivery being sent is left to its sender this long; after that any instance may "
            "retry it (a crashed sender's work is redone, with the same webhook-id)."
        ),
    )
    alerts_delivery_timeout_s: float = Field(
        default=5.0, gt=0, description="Timeout of one webhook or Apprise request."
    )
    alerts_max_attempts: int = Field(
        default=15, ge=1, le=50, description="Attempts of one delivery before it is given up."
    )
    alerts_retry_base_s: float = Field(
        default=5.0,
        gt=0,
        description="First retry delay; it doubles per attempt (with jitter) up to about a day.",
    )
    alerts_retry_max_s: float = Field(
        default=6 * 3600.0, gt=0, description="Longest wait between two attempts."
    )
    alerts_disable_after_s: float = Field(
        default=24 * 3600.0,
        gt=0,
        description="An endpoint failing without a success for this long is disabled (owner told).",
    )
    alerts_per_endpoint_concurrency: int = Field(
        default=4, ge=1, le=100, description="Requests in flight to one endpoint at once."
    )
    alerts_http_connections: int = Field(
        default=200,
        ge=1,
        description="Connections in the HTTP client pool shared by all endpoints.",
    )
    alerts_max_rules_per_account: int = Field(default=100, ge=1)
    alerts_max_channels_per_account: int = Field(default=10, ge=1)
    alerts_max_deliveries_per_minute: int = Field(
        default=120,
        ge=1,
        description="Alerts one account receives per minute; more wait for the next minute.",
    )
    alerts_ssrf_allowlist: list[str] = Field(
        default=[],
        description=(
            "Hosts or networks (JSON list: 'localhost', '10.0.0.0/8') that webhook and Apprise "
            "URLs may reach although they are loopback, private, link-local or metadata addresses."
        ),
    )
    alerts_delivery_retention_days: int = Field(
        default=14, ge=1, description="Days the delivery log keeps attempts."
    )
    alerts_feed_entries: int = Field(
        default=50, ge=1, le=500, description="Entries an Atom feed keeps per rule."
    )
    alerts_telegram_token: SecretStr | None = Field(
        default=None, description="Bot token from @BotFather; unset leaves the Telegram bot off."
    )
    alerts_telegram_token_file: Path | None = Field(
        default=None,
        description="A file holding the bot token (a Docker or ECS secret); empty file: bot off.",
    )
    alerts_telegram_api_url: str = Field(
        default="https://api.telegram.org/bot",
        description="Bot API base URL (the token is appended); tests point it at a local stand-in.",
    )
    alerts_telegram_polling: bool = Field(
        default=True,
        description=(
            "Read the bot's updates (commands) in this instance. Telegram allows one reader per "
            "bot: with several instances, let exactly one poll."
        ),
    )
    alerts_instance_id: str | None = Field(
        default=None,
        pattern=r"^[a-z0-9_-]{1,32}$",
        description="This instance's name in logs and delivery leases; random when unset.",
    )

    def telegram_token(self) -> str | None:
        """The bot token from the setting or its file; None leaves the bot off."""
        if self.alerts_telegram_token is not None:
            return self.alerts_telegram_token.get_secret_value().strip() or None
        if self.alerts_telegram_token_file is not None and self.alerts_telegram_token_file.exists():
            return self.alerts_telegram_token_file.read_text(encoding="utf-8").strip() or None
        return None
