"""A batch's database work, as plain documents: what the decisions of one batch must write.

Building the plan is pure; :mod:`fragmenty_ingest.store` carries it out. Once the batch's events
have their positions in the event log (:meth:`WritePlan.number_events`), each becomes an outbox
entry that holds everything needed to redo the event's effects (the event with its ``seq``, its
history row, the listing's fields after it, its rollup key), so a relay can finish a batch a
crash interrupted without guessing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from fragmenty_ingest.decide import CensusDecision
from fragmenty_ingest.rollups import RollupDelta, deltas_by_key, rollup_key
from fragmenty_ingest.state import ListingState, listing_document_fields
from fragmenty_shared.contracts import CensusCompleted, PriceEvent
from fragmenty_shared.storage import event_to_document


@dataclass(frozen=True, slots=True)
class _PendingEvent:
    event: PriceEvent  # without its position yet
    state: ListingState
    fields: dict[str, Any]


@dataclass
class WritePlan:
    """Everything one batch writes. Empty when nothing changed: then nothing is written."""

    listing_sets: dict[str, dict[str, Any]] = field(default_factory=dict)
    new_listing_ids: set[str] = field(default_factory=set)  # not stored before this batch
    outbox: list[dict[str, Any]] = field(default_factory=list)
    events: list[PriceEvent] = field(default_factory=list)
    census: list[dict[str, Any]] = field(default_factory=list)
    closes: list[dict[str, Any]] = field(default_factory=list)  # daily_close documents
    # Set when the batch holds the earliest change ever recorded (ingest_meta.first_observed).
    first_observed: datetime | None = None
    _keyed_events: list[tuple[str, PriceEvent]] = field(default_factory=list)
    _pending: list[_PendingEvent] = field(default_factory=list)

    def is_empty(self) -> bool:
        return not (self.listing_sets or self._pending or self.outbox or self.census)

    @property
    def event_count(self) -> int:
        return len(self._pending) + len(self.events)

    def event_days(self) -> list[date]:
        """The UTC days the batch's events happened on."""
        return [pending.event.occurred_at.date() for pending in self._pending] + [
            event.occurred_at.date() for event in self.events
        ]

    def number_events(self, first_seq: int) -> None:
        """Give the batch's events their log positions, from ``first_seq`` on, in order."""
        for offset, pending in enumerate(self._pending):
            event = pending.event.model_copy(update={"seq": first_seq + offset})
            key = rollup_key(event, pending.state.sold_at)
            self.events.append(event)
            self._keyed_events.append((key, event))
            self.outbox.append(
                {
                    "_id": event.event_id,
                    "routing_key": event.routing_key,
                    "event": event_to_document(event),
                    "rollup_key": key,
                    "listing_id": pending.state.listing_id,
                    "listing": dict(pending.fields),
                }
            )
        self._pending.clear()

    def rollup_deltas(self) -> dict[str, RollupDelta]:
        return deltas_by_key(self._keyed_events)

    def add_listing_write(
        self,
        state: ListingState,
        *,
        details: dict[str, Any] | None,
        is_new: bool,
        events: tuple[PriceEvent, ...],
    ) -> None:
        fields = listing_document_fields(state)
        if details is not None or is_new:
            fields["details"] = details
        if is_new:
            self.new_listing_ids.add(state.listing_id)
        # Several observations of one listing in a batch: the later ones win field by field.
        self.listing_sets.setdefault(state.listing_id, {}).update(fields)
        for event in events:
            self._add_event(event, state, fields)

    def add_census(self, census: CensusCompleted, decision: CensusDecision) -> None:
        for state, event in decision.delisted:
            fields = {"delisted_at": state.delisted_at, "changed_at": state.changed_at}
            self.listing_sets.setdefault(state.listing_id, {}).update(fields)
            self._add_event(event, state, fields)
        self.census.append(
            {
                "_id": census.crawl_id,
                "started_at": census.started_at,
                "completed_at": census.completed_at,
                "views": [view.model_dump(mode="json") for view in census.views],
                "delisted_count": len(decision.delisted),
                "delisted_from": [
                    f"{asset}:{status}" for asset, status in decision.views_delisted_from
                ],
                "not_fully_seen": [
                    f"{asset}:{status}" for asset, status in decision.views_not_trusted
                ],
            }
        )

    def _add_event(self, event: PriceEvent, state: ListingState, fields: dict[str, Any]) -> None:
        self._pending.append(_PendingEvent(event, state, dict(fields)))
