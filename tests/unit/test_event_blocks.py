"""Blobs of documents (event blocks, listing histories): stored compressed and read back exactly;
blobs written before compression (plain BSON) stay readable; another binary is an error naming
its document, not garbage."""

from datetime import UTC, datetime, timedelta

import bson
import pytest
from bson import Binary

from fragmenty_shared.blobs import COMPRESSED_BSON
from fragmenty_shared.event_log import block_document, block_events, merged_block
from fragmenty_shared.listing_history import decode_rows, history_document

AT = datetime(2026, 12, 1, tzinfo=UTC)


def stored_events(first_seq: int, count: int) -> list[dict[str, object]]:
    return [
        {
            "_id": f"ev-{seq}",
            "seq": seq,
            "type": "price_changed",
            "asset": "number",
            "slug": f"888{seq:08d}",
            "occurred_at": AT + timedelta(seconds=seq),
            "old": {"price_ton": "100", "status": "sale"},
            "new": {"price_ton": str(100 + seq), "status": "sale"},
        }
        for seq in range(first_seq, first_seq + count)
    ]


def plain(events: list[dict[str, object]]) -> Binary:
    return Binary(b"".join(bson.encode(event) for event in events))


def test_a_block_holds_its_events_compressed_and_gives_them_back_exactly() -> None:
    events = stored_events(1, 200)
    block = block_document(events, prev_seq=0)
    assert (block["first_seq"], block["last_seq"], block["count"]) == (1, 200, 200)
    assert block["events"].subtype == COMPRESSED_BSON
    assert len(block["events"]) * 4 < len(plain(events))
    assert block_events(block) == events


def test_a_history_holds_its_rows_compressed_and_gives_them_back_exactly() -> None:
    rows = stored_events(1, 50)
    document = history_document("number:88800000001", rows)
    assert document["rows"].subtype == COMPRESSED_BSON
    assert decode_rows(document) == rows
    assert decode_rows({"_id": "number:1", "rows": plain(rows)}) == rows  # written before


def test_a_block_written_before_compression_is_read_as_it_is() -> None:
    events = stored_events(5, 3)
    old: dict[str, object] = {"_id": 5, "first_seq": 5, "last_seq": 7, "prev_seq": 4, "count": 3}
    old["events"] = plain(events)
    assert block_events(old) == events
    merged = merged_block([old, block_document(stored_events(8, 2), prev_seq=7)])
    assert block_events(merged) == events + stored_events(8, 2)
    assert merged["prev_seq"] == 4


def test_another_binary_is_refused_with_its_document_named() -> None:
    block = {**block_document(stored_events(1, 2), prev_seq=0), "events": Binary(b"xyz", 0x81)}
    with pytest.raises(ValueError, match="event block 1: binary subtype 129 is not a blob"):
        block_events(block)
