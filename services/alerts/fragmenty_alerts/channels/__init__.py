"""Where alerts go: a channel of an account, and the result of one attempt to send there."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol


class ChannelKind(StrEnum):
    WEBHOOK = "webhook"  # Standard Webhooks endpoint (signed POST)
    APPRISE = "apprise"  # any Apprise URL: discord://, slack://, mailto://, ntfy://, json:// ...
    TELEGRAM = "telegram"  # a chat linked with the bot's /start


@dataclass(frozen=True)
class Channel:
    channel_id: str
    account_id: str
    kind: ChannelKind
    url: str | None = None
    secrets: tuple[str, ...] = ()
    chat_id: int | None = None
    enabled: bool = True
    disabled_reason: str | None = None
    failing_since: datetime | None = None

    @property
    def endpoint(self) -> str:
        """What "one endpoint" is for per-endpoint concurrency."""
        return f"telegram:{self.chat_id}" if self.kind is ChannelKind.TELEGRAM else str(self.url)

    @classmethod
    def of(cls, document: dict[str, Any]) -> Channel:
        return cls(
            channel_id=document["_id"],
            account_id=document["account_id"],
            kind=ChannelKind(document["kind"]),
            url=document.get("url"),
            secrets=tuple(document.get("secrets") or ()),
            chat_id=document.get("chat_id"),
            enabled=bool(document.get("enabled", True)),
            disabled_reason=document.get("disabled_reason"),
            failing_since=document.get("failing_since"),
        )


@dataclass(frozen=True)
class Outgoing:
    """One message to send, the same for every channel kind."""

    webhook_id: str
    type: str  # alert.fired, alert.digest, endpoint.disabled
    title: str
    text: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SendResult:
    ok: bool
    status_code: int | None = None
    error: str | None = None
    retry_after_s: float | None = None
    gone: bool = False  # the endpoint said it is gone for good (HTTP 410): disable it


class Sender(Protocol):
    async def send(self, channel: Channel, message: Outgoing) -> SendResult: ...
