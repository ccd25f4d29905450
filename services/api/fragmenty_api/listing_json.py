"""Listings as JSON, serialised once per listing state rather than once per request.

A 50-row page is most of a request's work when each row goes through the response model on
every request; the snapshot's rows are immutable, so each row's JSON is made once and reused
until an event replaces the row or a refit its valuation. The bytes are exactly
``ListingPublic``'s JSON.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from fragmenty_api.models import ListingPublic
from fragmenty_api.snapshot import ListingRow, MarketSnapshot
from fragmenty_api.valuations import Valuations


def listing_json(snapshot: MarketSnapshot, row: ListingRow, valuations: Valuations) -> bytes:
    valuation = valuations.of_row(row)
    cached = snapshot.row_json.get(row.id)
    if cached is not None and cached[0] is row and cached[1] is valuation:
        return cached[2]
    encoded = ListingPublic.from_row(row, valuation).model_dump_json().encode()
    snapshot.row_json[row.id] = (row, valuation, encoded)
    return encoded


def listing_page_json(
    snapshot: MarketSnapshot,
    rows: Sequence[ListingRow],
    next_cursor: str | None,
    valuations: Valuations,
) -> bytes:
    """A ``ListingPage`` document, assembled from the rows' cached JSON."""
    items = b",".join(listing_json(snapshot, row, valuations) for row in rows)
    return b'{"items":[' + items + b'],"next_cursor":' + json.dumps(next_cursor).encode() + b"}"
