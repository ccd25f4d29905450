"""What an alert says: one payload, rendered as text (Telegram, Apprise) and as webhook JSON."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from fragmenty_alerts.durations import describe_duration
from fragmenty_alerts.rules import Rule
from fragmenty_shared.contracts import EventType, ListingSnapshot, PriceEvent

FRAGMENT_URL = "https://fragment.com"
_ASSET_PATH = {"number": "number", "username": "username"}
_HEADLINES = {
    EventType.LISTED: "listed",
    EventType.PRICE_CHANGED: "price changed",
    EventType.STATUS_CHANGED: "status changed",
    EventType.AUCTION_EXTENDED: "auction extended",
    EventType.SOLD: "sold",
    EventType.DELISTED: "delisted",
}


def webhook_id(rule_id: str, occasion: str) -> str:
    """Standard Webhooks ``webhook-id``: the same for every attempt of one rule and event."""
    digest = hashlib.sha256(f"{rule_id}|{occasion}".encode()).hexdigest()[:32]
    return f"msg_{digest}"


def listing_links(event: PriceEvent, public_url: str) -> tuple[str, str]:
    asset = _ASSET_PATH[event.asset.value]
    return (
        f"{public_url.rstrip('/')}/listing/{event.asset.value}/{event.slug}",
        f"{FRAGMENT_URL}/{asset}/{event.slug}",
    )


def _ton(amount: Decimal) -> str:
    return f"{amount:,f}".rstrip("0").rstrip(".") if "." in f"{amount:f}" else f"{amount:,f}"


def _price(snapshot: ListingSnapshot | None) -> str:
    if snapshot is None:
        return "-"
    usd = f" (${snapshot.price_usd:,.2f})" if snapshot.price_usd is not None else ""
    return f"{_ton(snapshot.price_ton)} TON{usd}"


def describe_event(event: PriceEvent, public_url: str, *, now: datetime | None = None) -> str:
    """A few lines for people: title, what changed, TON and USD, time left, links."""
    lines = [f"{event.title}: {_HEADLINES[event.type]}"]
    old, new = event.old, event.new
    if old is not None and new is not None and old.price_ton != new.price_ton:
        change = f" ({event.change_pct:+.1f} %)" if event.change_pct is not None else ""
        lines.append(f"{_price(old)} -> {_price(new)}{change}")
    elif new is not None or old is not None:
        lines.append(_price(new or old))
    if old is not None and new is not None and old.status != new.status:
        lines.append(f"{old.status.value} -> {new.status.value}")
    if new is not None and new.ends_at is not None:
        left = (new.ends_at - (now or event.occurred_at)).total_seconds()
        lines.append(f"ends in {describe_duration(left)}" if left > 0 else "ended")
    page, fragment = listing_links(event, public_url)
    lines.append(f"{page}\n{fragment}")
    return "\n".join(lines)


@dataclass(frozen=True)
class AlertMessage:
    """One message for one rule: about one event, or a digest of several."""

    rule_id: str
    rule_name: str | None
    occasion: str  # the event id, or "digest:<period start>"
    events: tuple[PriceEvent, ...]
    public_url: str

    @property
    def webhook_id(self) -> str:
        return webhook_id(self.rule_id, self.occasion)

    @property
    def is_digest(self) -> bool:
        return self.occasion.startswith("digest:")

    def title(self) -> str:
        label = self.rule_name or self.rule_id
        if self.is_digest:
            return f"Fragmenty digest ({label}): {len(self.events)} alerts"
        return f"Fragmenty alert ({label}): {self.events[0].title}"

    def text(self) -> str:
        bodies = [describe_event(event, self.public_url) for event in self.events]
        return "\n\n".join([self.title(), *bodies])

    def webhook_body(self, timestamp: datetime) -> dict[str, Any]:
        """The Standard Webhooks envelope: ``type``, ``timestamp``, ``data``."""
        events = []
        for event in self.events:
            page, fragment = listing_links(event, self.public_url)
            events.append(
                {**event.model_dump(mode="json"), "listing_url": page, "fragment_url": fragment}
            )
        return {
            "type": "alert.digest" if self.is_digest else "alert.fired",
            "timestamp": timestamp.isoformat().replace("+00:00", "Z"),
            "data": {
                "rule_id": self.rule_id,
                "rule_name": self.rule_name,
                "events": events,
                "text": self.text(),
            },
        }


def message_for(
    rule: Rule, events: list[PriceEvent], occasion: str, public_url: str
) -> AlertMessage:
    return AlertMessage(rule.rule_id, rule.spec.name, occasion, tuple(events), public_url)
