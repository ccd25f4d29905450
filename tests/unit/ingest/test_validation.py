"""Poison messages are recognised, with a reason; good ones parse; a page is judged row by row."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from fragmenty_ingest.validation import MAX_MESSAGE_BYTES, read_listings_message
from fragmenty_shared.contracts import CensusCompleted, ListingObserved, pages_of
from tests.unit.ingest.factory import T0, census, observed


def _with(**changes: object) -> bytes:
    document = json.loads(observed().model_dump_json())
    document.update(changes)
    return json.dumps(document).encode()


def _page(count: int = 3) -> dict[str, Any]:
    rows = [
        observed(f"8880000000{index}", at=T0 + timedelta(seconds=index)) for index in range(count)
    ]
    [page] = pages_of(rows)
    document: dict[str, Any] = json.loads(page.model_dump_json())
    return document


def test_good_messages_parse_by_kind() -> None:
    single = read_listings_message(observed().model_dump_json().encode())
    assert single.kind == "listing_observed"
    assert single.messages == (observed(),)
    whole = read_listings_message(census(rows=3).model_dump_json().encode())
    assert whole.kind == "census_completed"
    assert isinstance(whole.messages[0], CensusCompleted)


def test_a_page_parses_into_its_rows_in_order_with_their_own_times() -> None:
    rows = [observed(f"8880000000{index}", at=T0 + timedelta(seconds=index)) for index in range(3)]
    [page] = pages_of(rows)
    read = read_listings_message(page.model_dump_json().encode())
    assert (read.kind, read.poison) == ("listings_observed", ())
    assert read.messages == tuple(rows)
    assert all(isinstance(message, ListingObserved) for message in read.messages)


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
        (json.dumps(_page() | {"schema_version": 1}).encode(), "unknown_schema_version"),
        (json.dumps(_page() | {"crawl_id": None}).encode(), "invalid"),  # the page itself
        (json.dumps(_page() | {"rows": []}).encode(), "invalid"),
        (json.dumps(_page() | {"rows": "many"}).encode(), "invalid"),
    ],
)
def test_poison_is_named_with_a_reason(body: bytes, kind: str) -> None:
    read = read_listings_message(body)
    assert (read.kind, read.messages) == ("poison", ())
    [outcome] = read.poison
    assert outcome.kind == kind
    assert outcome.reason.startswith(kind)
    assert len(outcome.reason) <= 1000
    assert outcome.body == body  # dead-lettered as it came


def test_a_bad_row_is_poison_on_its_own_and_the_rest_of_its_page_is_read() -> None:
    document = _page(4)
    document["rows"][1]["price_ton"] = "-1"
    document["rows"][3] = {"slug": "88800000003", "title": 7}
    read = read_listings_message(json.dumps(document).encode())
    assert read.kind == "listings_observed"
    assert [message.slug for message in read.messages] == ["88800000000", "88800000002"]  # type: ignore[union-attr]
    first, second = read.poison
    assert first.kind == "invalid_row"
    assert first.reason.startswith("invalid_row: row 1 (88800000001): price_ton:")
    assert second.reason.startswith("invalid_row: row 3 (88800000003): title:")
    # Each goes to the dead-letter queue as a page of its one row, as the row came.
    dead = json.loads(first.body)
    assert dead["rows"] == [document["rows"][1]]
    assert {key: value for key, value in dead.items() if key != "rows"} == {
        key: value for key, value in document.items() if key != "rows"
    }


def test_a_page_of_nothing_but_bad_rows_is_only_poison() -> None:
    document = _page(2)
    for row in document["rows"]:
        row["status"] = "stolen"
    read = read_listings_message(json.dumps(document).encode())
    assert read.messages == ()
    assert [poison.kind for poison in read.poison] == ["invalid_row", "invalid_row"]
