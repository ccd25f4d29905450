"""Poison messages are recognised, with a reason; good ones parse."""

from __future__ import annotations

import json

import pytest

from fragmenty_ingest.validation import MAX_MESSAGE_BYTES, Poison, parse_listings_message
from fragmenty_shared.contracts import CensusCompleted, ListingObserved
from tests.unit.ingest.factory import census, observed


def _with(**changes: object) -> bytes:
    document = json.loads(observed().model_dump_json())
    document.update(changes)
    return json.dumps(document).encode()


def test_good_messages_parse_by_kind() -> None:
    assert isinstance(
        parse_listings_message(observed().model_dump_json().encode()), ListingObserved
    )
    assert isinstance(
        parse_listings_message(census(rows=3).model_dump_json().encode()), CensusCompleted
    )


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        (b"\xff\xfe not json", "not_json"),
        (b"{not json", "not_json"),
        (b'{"kind": "listing_observed"}', "invalid"),
        (b"[1, 2]", "invalid"),
        (_with(price_ton="NaN"), "invalid"),
        (b'{"kind": "listing_observed", "price_ton": NaN}', "invalid"),
        (_with(price_ton="-5"), "invalid"),
        (_with(price_ton="1e15"), "invalid"),
        (_with(title="x" * 500), "invalid"),
        (_with(schema_version=2), "unknown_schema_version"),
        (_with(kind="something_else"), "invalid"),
        (b" " * (MAX_MESSAGE_BYTES + 1), "too_large"),
        (b"[" * 100_000, "not_json"),  # nested past the JSON parser's recursion limit
    ],
)
def test_poison_is_named_with_a_reason(body: bytes, kind: str) -> None:
    outcome = parse_listings_message(body)
    assert isinstance(outcome, Poison)
    assert outcome.kind == kind
    assert outcome.reason.startswith(kind)
    assert len(outcome.reason) <= 1000
