"""The ``/ws`` protocol: JSON text frames from the client, and the frames the server writes.

Client: ``{"action": "subscribe", "id": "s1", "filter": {...}}``,
``{"action": "unsubscribe", "id": "s1"}``, ``{"action": "ping"}``.
Server: ``subscribed``, ``unsubscribed``, ``event``, ``events``, ``pong``, ``replayed`` and ``error`` frames.
Event frames are assembled from the event's JSON, serialised once per event, so fanning one
event out to thousands of sockets costs a string concatenation each, not a serialisation.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

from fragmenty_shared.contracts import PriceEvent
from fragmenty_shared.filters import SubscriptionFilter

SubscriptionId = Annotated[str, Field(min_length=1, max_length=64)]


class _Command(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


MAX_BATCH_MS = 5000
MIN_BATCH_MS = 10


class Subscribe(_Command):
    action: Literal["subscribe"]
    id: SubscriptionId
    filter: SubscriptionFilter = Field(default_factory=SubscriptionFilter)
    batch_ms: int = Field(
        default=0,
        ge=0,
        le=MAX_BATCH_MS,
        description=(
            "0: one event frame per event. Otherwise every event that matched within a window "
            "of this many milliseconds arrives in one events frame at the window's end."
        ),
    )

    @field_validator("batch_ms")
    @classmethod
    def _a_window_worth_a_timer(cls, value: int) -> int:
        if 0 < value < MIN_BATCH_MS:
            raise ValueError(f"batch_ms is 0 (no batches) or {MIN_BATCH_MS}..{MAX_BATCH_MS}")
        return value


class Unsubscribe(_Command):
    action: Literal["unsubscribe"]
    id: SubscriptionId


class Ping(_Command):
    action: Literal["ping"]


ClientCommand = Annotated[Subscribe | Unsubscribe | Ping, Field(discriminator="action")]
_command_adapter: TypeAdapter[Subscribe | Unsubscribe | Ping] = TypeAdapter(ClientCommand)


class ProtocolError(ValueError):
    """A client frame the server cannot act on; the message is meant for the client."""

    def __init__(self, message: str, subscription_id: str | None = None) -> None:
        super().__init__(message)
        self.subscription_id = subscription_id


def parse_command(text: str) -> Subscribe | Unsubscribe | Ping:
    """The command in one text frame, or :class:`ProtocolError` saying what is wrong with it."""
    try:
        raw = json.loads(text)
    except ValueError as error:
        raise ProtocolError(f"not JSON: {error}") from None
    if not isinstance(raw, dict):
        raise ProtocolError("a frame must be a JSON object with an 'action'")
    subscription_id = raw.get("id") if isinstance(raw.get("id"), str) else None
    try:
        return _command_adapter.validate_python(raw)
    except ValidationError as error:
        raise ProtocolError(_describe(error), subscription_id) from None


def _describe(error: ValidationError) -> str:
    problems = []
    for detail in error.errors(include_url=False, include_input=False)[:5]:
        where = ".".join(str(part) for part in detail["loc"]) or "frame"
        problems.append(f"{where}: {detail['msg']}")
    return "; ".join(problems)


def _frame(payload: dict[str, Any]) -> str:
    return json.dumps(payload, separators=(",", ":"))


def subscribed_frame(subscription_id: str) -> str:
    return _frame({"type": "subscribed", "id": subscription_id})


def unsubscribed_frame(subscription_id: str) -> str:
    return _frame({"type": "unsubscribed", "id": subscription_id})


def pong_frame() -> str:
    return _frame({"type": "pong"})


def error_frame(message: str, subscription_id: str | None = None) -> str:
    payload: dict[str, Any] = {"type": "error", "message": message}
    if subscription_id is not None:
        payload["id"] = subscription_id
    return _frame(payload)


def replayed_frame(count: int, last: PriceEvent | None) -> str:
    """Marks the end of a ``?since=`` replay: what follows is live. ``last_seq`` is the
    position of the last event the replay sent (null when it sent none)."""
    return _frame(
        {
            "type": "replayed",
            "count": count,
            "last_seq": None if last is None else last.seq,
            "last_event_id": None if last is None else last.event_id,
        }
    )


def event_frame(subscription_id: str, event_json: str) -> str:
    return f'{{"type":"event","subscription":{json.dumps(subscription_id)},"event":{event_json}}}'


def events_frame(subscription_id: str, event_jsons: list[str]) -> str:
    """A batched subscription's window: ``{"type": "events", "subscription", "events": [...]}``."""
    events = ",".join(event_jsons)
    return f'{{"type":"events","subscription":{json.dumps(subscription_id)},"events":[{events}]}}'
