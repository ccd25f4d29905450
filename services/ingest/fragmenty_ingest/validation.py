"""Telling good listing messages from poison: parse, or say in a few words why not.

A poison message (not JSON, wrong shape, NaN or negative price, absurd sizes, an unknown schema
version) can never succeed, so retrying it is pointless: ingest dead-letters it at once with
the reason in a header, and the stream goes on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from pydantic import ValidationError

from fragmenty_shared.contracts import (
    SCHEMA_VERSION,
    CensusCompleted,
    ListingObserved,
    listings_message_adapter,
)

# A listing message is a few hundred bytes; item pages with long bid histories a few hundred KB.
MAX_MESSAGE_BYTES = 1_000_000

ListingsMessage = ListingObserved | CensusCompleted


@dataclass(frozen=True, slots=True)
class Poison:
    """Why a message cannot be ingested: a short ``kind`` for metrics and a detail for people."""

    kind: str  # too_large | not_json | unknown_schema_version | invalid
    detail: str

    @property
    def reason(self) -> str:
        return f"{self.kind}: {self.detail}"[:1000]


def parse_listings_message(body: bytes) -> ListingsMessage | Poison:
    """The message, or why it is poison; never raises (what it cannot read is poison)."""
    if len(body) > MAX_MESSAGE_BYTES:
        return Poison("too_large", f"{len(body)} bytes > {MAX_MESSAGE_BYTES}")
    try:  # the common case, in one pass of pydantic's own JSON parser
        return listings_message_adapter.validate_json(body)
    except ValidationError:
        pass
    try:
        return _diagnose(body)
    except Exception as error:  # e.g. RecursionError on deeply nested JSON
        return Poison("not_json", f"unreadable: {type(error).__name__}")


def _diagnose(body: bytes) -> Poison:
    """Why a message failed validation, in the words an operator needs."""
    try:
        # json.loads accepts NaN and Infinity; pydantic then refuses them as prices.
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        return Poison("not_json", str(error))
    if isinstance(document, dict):
        version = document.get("schema_version", SCHEMA_VERSION)
        if version != SCHEMA_VERSION:
            return Poison("unknown_schema_version", f"schema_version {version!r}")
    try:
        listings_message_adapter.validate_python(document)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in item['loc'])}: {item['msg']}"
            for item in error.errors()[:5]
        )
        return Poison("invalid", problems)
    # Valid as a Python document but not as JSON text (e.g. a NaN literal for a number).
    return Poison("invalid", "not valid as JSON text")
