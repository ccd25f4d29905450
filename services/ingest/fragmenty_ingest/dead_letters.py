"""What a dead letter of ``ingest.listings.dlq`` says: why, from where, when, and how to send it back.

Two kinds of message land in that queue:

- ingest's own (poison messages and bad rows of pages, see :mod:`validation`): the reason in
  ``x-fragmenty-reason``, where the message was going in ``x-original-exchange`` and
  ``x-original-routing-key`` (dead letters from before the exchange header went to the listings
  exchange: the only one bound to ingest's queue);
- RabbitMQ's: a message that crashed ingest ``x-delivery-limit`` times, described by the
  broker's ``x-death`` header (reason ``delivery_limit``, the exchange and routing keys it was
  published with).

Pure functions over headers and bodies; the queue itself is handled in :mod:`dead_letter_queue`.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiormq

from fragmenty_shared.topology import (
    DEAD_LETTER_REASON_HEADER,
    ORIGINAL_EXCHANGE_HEADER,
    ORIGINAL_ROUTING_KEY_HEADER,
    REPLAYS_HEADER,
)

# Headers that describe one dead-lettering: a replayed message leaves them behind, and gets
# new ones if it is dead-lettered again.
_DEATH_HEADERS = (
    "x-death",
    "x-first-death-exchange",
    "x-first-death-queue",
    "x-first-death-reason",
    "x-last-death-exchange",
    "x-last-death-queue",
    "x-last-death-reason",
    "x-delivery-count",
    DEAD_LETTER_REASON_HEADER,
    ORIGINAL_EXCHANGE_HEADER,
    ORIGINAL_ROUTING_KEY_HEADER,
)

EXCERPT_CHARS = 120


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a message was going (its exchange and routing key) and how often it was replayed."""

    exchange: str = ""
    routing_key: str = ""
    replays: int = 0

    @classmethod
    def of_delivery(cls, message: aiormq.abc.DeliveredMessage) -> Origin:
        headers = message.header.properties.headers or {}
        return cls(message.exchange or "", message.routing_key or "", replay_count(headers))

    def headers(self) -> dict[str, str | int]:
        """The headers ingest puts on a dead letter of a message from here."""
        headers: dict[str, str | int] = {
            ORIGINAL_EXCHANGE_HEADER: self.exchange,
            ORIGINAL_ROUTING_KEY_HEADER: self.routing_key,
        }
        if self.replays:
            headers[REPLAYS_HEADER] = self.replays
        return headers


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One dead letter, read: enough to count, show and route it, without its whole body."""

    reason: str
    origin: Origin
    dead_lettered_at: datetime | None
    schema: str  # "listings_observed v2", or "?" when the body does not say
    excerpt: str

    @property
    def kind(self) -> str:
        """The reason's first word (``invalid_row``, ``not_json``, ``delivery_limit``...): what
        ``--reason`` matches, and what the list counts by."""
        return self.reason.split(":", 1)[0].strip()

    def to_json(self) -> dict[str, Any]:
        return {
            "reason": self.reason,
            "kind": self.kind,
            "exchange": self.origin.exchange,
            "routing_key": self.origin.routing_key,
            "replays": self.origin.replays,
            "dead_lettered_at": (
                self.dead_lettered_at.isoformat() if self.dead_lettered_at else None
            ),
            "schema": self.schema,
            "excerpt": self.excerpt,
        }


def read_dead_letter(
    headers: Mapping[str, Any],
    body: bytes,
    *,
    timestamp: datetime | None,
    default_exchange: str,
) -> DeadLetter:
    """Read a dead letter's headers (``timestamp``: its AMQP timestamp property).

    ``default_exchange`` is where an ingest dead letter without ``x-original-exchange`` came
    from (the listings exchange of the namespace).
    """
    replays = replay_count(headers)
    death = _last_death(headers)
    if death is not None:
        routing_keys = death.get("routing-keys") or [""]
        reason = f"{_text(death.get('reason')) or 'dead-lettered'}: by RabbitMQ from "
        reason += _text(death.get("queue"))
        origin = Origin(_text(death.get("exchange")), _text(routing_keys[0]), replays)
        when = death.get("time")
        dead_lettered_at = _utc(when) if isinstance(when, datetime) else _utc(timestamp)
    else:
        reason = _text(headers.get(DEAD_LETTER_REASON_HEADER)) or "unknown: no reason recorded"
        exchange = _text(headers.get(ORIGINAL_EXCHANGE_HEADER)) or default_exchange
        routing_key = _text(headers.get(ORIGINAL_ROUTING_KEY_HEADER))
        origin = Origin(exchange, routing_key, replays)
        dead_lettered_at = _utc(timestamp)
    return DeadLetter(reason, origin, dead_lettered_at, _schema(body), _excerpt(body))


def replay_headers(headers: Mapping[str, Any]) -> dict[str, Any]:
    """A replayed message's headers: its own, without those of its dead-lettering, and the
    replay counted (ingest keeps the count if it dead-letters the message again)."""
    kept = {name: value for name, value in headers.items() if name not in _DEATH_HEADERS}
    kept[REPLAYS_HEADER] = replay_count(headers) + 1
    return kept


def replay_count(headers: Mapping[str, Any]) -> int:
    value = headers.get(REPLAYS_HEADER, 0)
    try:
        return max(0, int(_text(value) if isinstance(value, bytes) else value))
    except (TypeError, ValueError):
        return 0


def matches(letter: DeadLetter, reason: str | None) -> bool:
    """``--reason``: a reason's kind exactly (``invalid`` is not ``invalid_row``); None: any."""
    return reason is None or letter.kind == reason


def summarize(letters: Iterable[DeadLetter], *, first: int) -> dict[str, Any]:
    """What ``list`` says, as plain data (``--json`` prints it as it is)."""
    letters = list(letters)
    return {
        "waiting": len(letters),
        "by_reason": _counts(letter.kind for letter in letters),
        "by_routing_key": _counts(letter.origin.routing_key for letter in letters),
        "by_schema": _counts(letter.schema for letter in letters),
        "replayed_before": sum(1 for letter in letters if letter.origin.replays),
        "first": [letter.to_json() for letter in letters[:first]],
    }


def render_summary(queue: str, summary: dict[str, Any]) -> str:
    """``list`` for people: the counts, then the first few dead letters."""
    lines = [f"{summary['waiting']} dead letters waiting in {queue}"]
    for title, key in (
        ("by reason", "by_reason"),
        ("by routing key", "by_routing_key"),
        ("by schema", "by_schema"),
    ):
        if summary[key]:
            counts = ", ".join(
                f"{name or '(none)'} {count}" for name, count in summary[key].items()
            )
            lines.append(f"  {title}: {counts}")
    if summary["replayed_before"]:
        lines.append(f"  replayed before (failed again?): {summary['replayed_before']}")
    for index, letter in enumerate(summary["first"], 1):
        replays = f", replayed {letter['replays']}x" if letter["replays"] else ""
        lines.append(
            f"{index}. {letter['dead_lettered_at'] or 'time unknown'} "
            f"{letter['exchange'] or '(default exchange)'} {letter['routing_key']}{replays}"
        )
        lines.append(f"   reason: {letter['reason']}")
        lines.append(f"   body:   {letter['excerpt']}")
    return "\n".join(lines)


def _last_death(headers: Mapping[str, Any]) -> Mapping[str, Any] | None:
    # RabbitMQ keeps the most recent dead-lettering first.
    deaths = headers.get("x-death")
    if isinstance(deaths, list) and deaths and isinstance(deaths[0], Mapping):
        return deaths[0]
    return None


def _schema(body: bytes) -> str:
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return "?"
    if not isinstance(document, dict) or not isinstance(document.get("kind"), str):
        return "?"
    return f"{document['kind']} v{document.get('schema_version', '?')}"


def _excerpt(body: bytes) -> str:
    text = " ".join(body[: EXCERPT_CHARS * 4].decode("utf-8", "replace").split())
    return text if len(text) <= EXCERPT_CHARS else text[: EXCERPT_CHARS - 3] + "..."


def _counts(names: Iterable[str]) -> dict[str, int]:
    return dict(Counter(names).most_common())


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
