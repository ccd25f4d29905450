"""Telling good listing messages from poison: parse, or say in a few words why not.

A poison message (not JSON, wrong shape, NaN or negative price, absurd sizes, an unknown schema
version) can never succeed, so retrying it is pointless: ingest dead-letters it at once with
the reason in a header, and the stream goes on.

A page (``ListingsObserved``) is judged row by row: a row that is not valid is poison on its
own (dead-lettered as a one-row copy of its page, so it can be inspected and replayed), and the
page's other rows are ingested. Only a page whose envelope is wrong (crawl, asset, time, rate,
the list of rows itself) is poison as a whole.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from fragmenty_shared.contracts import (
    LISTINGS_SCHEMA_VERSIONS,
    CensusCompleted,
    ListingObserved,
    ListingsObserved,
    listings_message_adapter,
)

# A page of 500 rows is about 150 KB; item pages with long bid histories a few hundred KB.
MAX_MESSAGE_BYTES = 1_000_000

PAGE_KIND = "listings_observed"

IngestMessage = ListingObserved | CensusCompleted
"""What ingest decides on: one observation (a page's rows are taken one by one) or a census."""


@dataclass(frozen=True, slots=True)
class Poison:
    """What cannot be ingested: a short ``kind`` for metrics, a detail for people, and the
    bytes that go to the dead-letter queue (the message as it came, or one bad row of a page)."""

    kind: str  # too_large | not_json | unknown_schema_version | invalid | invalid_row
    detail: str
    body: bytes = b""

    @property
    def reason(self) -> str:
        return f"{self.kind}: {self.detail}"[:1000]


@dataclass(frozen=True, slots=True)
class ReadMessage:
    """One delivery's body, read: what to ingest, in order, and what to dead-letter."""

    kind: (
        str  # the message's kind (listings_observed, listing_observed, census_completed) or poison
    )
    messages: tuple[IngestMessage, ...] = ()
    poison: tuple[Poison, ...] = ()


def read_listings_message(body: bytes) -> ReadMessage:
    """What a delivery holds; never raises (what it cannot read is poison)."""
    if len(body) > MAX_MESSAGE_BYTES:
        return _whole("too_large", f"{len(body)} bytes > {MAX_MESSAGE_BYTES}", body)
    try:  # the common case, in one pass of pydantic's own JSON parser
        message = listings_message_adapter.validate_json(body)
    except ValidationError:
        pass
    else:
        if isinstance(message, ListingsObserved):
            return ReadMessage(PAGE_KIND, tuple(message.observations()))
        return ReadMessage(message.kind, (message,))
    try:
        return _read_slowly(body)
    except Exception as error:  # e.g. RecursionError on deeply nested JSON
        return _whole("not_json", f"unreadable: {type(error).__name__}", body)


def _whole(kind: str, detail: str, body: bytes) -> ReadMessage:
    return ReadMessage("poison", poison=(Poison(kind, detail, body),))


def _read_slowly(body: bytes) -> ReadMessage:
    """A message that failed validation: its good rows, if it is a page, and why not the rest."""
    try:
        # json.loads accepts NaN and Infinity; pydantic then refuses them as prices.
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        return _whole("not_json", str(error), body)
    if isinstance(document, dict):
        kind = document.get("kind")
        expected = LISTINGS_SCHEMA_VERSIONS.get(kind) if isinstance(kind, str) else None
        version = document.get("schema_version", expected)
        if expected is not None and version != expected:
            return _whole("unknown_schema_version", f"{kind} schema_version {version!r}", body)
    try:
        listings_message_adapter.validate_python(document)
    except ValidationError as error:
        if isinstance(document, dict) and document.get("kind") == PAGE_KIND:
            page = _page_without_bad_rows(document, error.errors())
            if page is not None:
                return page
        return _whole("invalid", _problems(error.errors()), body)
    # Valid as a Python document but not as JSON text (e.g. a NaN literal for a number).
    return _whole("invalid", "not valid as JSON text", body)


def _page_without_bad_rows(
    document: dict[str, Any], errors: Sequence[ErrorDetails]
) -> ReadMessage | None:
    """A page whose only faults are in some rows: the others, and each bad row as poison.

    None when the page itself is at fault (then it is poison as a whole).
    """
    rows = document.get("rows")
    if not isinstance(rows, list):
        return None
    by_row: dict[int, list[ErrorDetails]] = {}
    for error in errors:
        location = error["loc"]
        # (kind tag, "rows", index, field...): the discriminated union names the kind first.
        if len(location) >= 3 and location[1] == "rows" and isinstance(location[2], int):
            by_row.setdefault(location[2], []).append(error)
        else:
            return None
    good_rows = [row for index, row in enumerate(rows) if index not in by_row]
    messages: tuple[IngestMessage, ...] = ()
    if good_rows:
        try:
            page = ListingsObserved.model_validate({**document, "rows": good_rows})
        except ValidationError:
            return None
        messages = tuple(page.observations())
    poison = tuple(
        Poison(
            "invalid_row",
            f"row {index}{_slug_of(rows[index])}: {_problems(row_errors, skip=3)}",
            json.dumps({**document, "rows": [rows[index]]}).encode(),
        )
        for index, row_errors in sorted(by_row.items())
    )
    return ReadMessage(PAGE_KIND, messages, poison)


def _slug_of(row: object) -> str:
    slug = row.get("slug") if isinstance(row, dict) else None
    return f" ({slug[:40]})" if isinstance(slug, str) else ""


def _problems(errors: Sequence[ErrorDetails], *, skip: int = 0) -> str:
    """The first few errors as ``field.path: message`` (``skip``: leading path parts to drop)."""
    return "; ".join(
        f"{'.'.join(str(part) for part in error['loc'][skip:]) or 'row'}: {error['msg']}"
        for error in errors[:5]
    )
