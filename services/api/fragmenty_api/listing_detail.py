"""One listing with everything known about it: shared by the REST detail and the listing page."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from pydantic import ValidationError

from fragmenty_api.models import HistoryPoint, ListingDetail, ListingPublic, trade_entries
from fragmenty_api.snapshot import HistoryRow, ListingRow
from fragmenty_shared.contracts import PriceEvent
from fragmenty_shared.storage import event_from_document
from fragmenty_shared.valuation.estimator import Valuation

logger = logging.getLogger(__name__)


def _decimal_or_none(value: Any) -> Any:
    return value if isinstance(value, str | int) else None


def build_listing_detail(
    row: ListingRow, stored_events: Iterable[dict[str, Any]], valuation: Valuation | None = None
) -> ListingDetail:
    """Everything about one listing: its current row and its stored events (its history)."""
    details = dict(row.details) if row.details else None
    events = valid_events(stored_events)
    return ListingDetail(
        listing=ListingPublic.from_row(row, valuation),
        highest_bid_ton=_decimal_or_none((details or {}).get("highest_bid_ton")),
        min_bid_ton=_decimal_or_none((details or {}).get("min_bid_ton")),
        owner=(details or {}).get("owner")
        if isinstance((details or {}).get("owner"), str)
        else None,
        history=[HistoryPoint.from_row(HistoryRow.of_event(event)) for event in events],
        events=events,
        bid_history=trade_entries(details, "bid_history"),
        ownership_history=trade_entries(details, "ownership_history"),
    )


def valid_events(documents: Iterable[dict[str, Any]]) -> list[PriceEvent]:
    """Stored events as the contract says; a document that is not a valid event is skipped
    (and logged), so one bad document cannot break a listing's page."""
    events = []
    for document in documents:
        try:
            events.append(event_from_document(document))
        except (KeyError, ValidationError):
            logger.warning("skipping a stored event that is not valid: %s", document.get("_id"))
    return events
