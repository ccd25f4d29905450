"""Reading dead letters: reason, origin and time from ingest's headers or RabbitMQ's x-death,
the headers of a replay, --reason matching and the list's counts."""

from __future__ import annotations

from datetime import UTC, datetime

from fragmenty_ingest.dead_letters import (
    DeadLetter,
    Origin,
    matches,
    read_dead_letter,
    render_summary,
    replay_headers,
    summarize,
)

AT = datetime(2026, 12, 4, 1, 2, 3, tzinfo=UTC)
PAGE = b'{"kind": "listings_observed", "schema_version": 2, "rows": [{"slug": "88800000002"}]}'


def read(headers: dict[str, object], body: bytes = PAGE) -> DeadLetter:
    return read_dead_letter(headers, body, timestamp=AT, default_exchange="ns.fragmenty.listings")


def test_ingest_dead_letters_say_their_reason_and_origin_in_ingest_headers() -> None:
    letter = read(
        {
            "x-fragmenty-reason": "invalid_row: row 2 (88800000002): price_ton: finite",
            "x-original-exchange": "ns.fragmenty.listings",
            "x-original-routing-key": "number.observed",
        }
    )
    assert letter.kind == "invalid_row"
    assert letter.origin == Origin("ns.fragmenty.listings", "number.observed", 0)
    assert letter.dead_lettered_at == AT
    assert letter.schema == "listings_observed v2"


def test_ingest_dead_letters_from_before_the_exchange_header_go_back_to_the_listings_exchange() -> (
    None
):
    letter = read({"x-fragmenty-reason": "not_json: x", "x-original-routing-key": "gift.observed"})
    assert letter.origin == Origin("ns.fragmenty.listings", "gift.observed", 0)


def test_rabbitmq_dead_letters_are_read_from_the_most_recent_x_death() -> None:
    died = datetime(2026, 12, 3, 23, 0, 0)  # pamqp decodes AMQP timestamps without a zone
    letter = read(
        {
            "x-death": [
                {
                    "count": 1,
                    "reason": "delivery_limit",
                    "queue": "ns.ingest.listings",
                    "time": died,
                    "exchange": "ns.fragmenty.listings",
                    "routing-keys": ["number.observed"],
                },
                {"reason": "rejected", "exchange": "elsewhere", "routing-keys": ["old"]},
            ],
            "x-fragmenty-replays": 2,
        }
    )
    assert letter.kind == "delivery_limit"
    assert "ns.ingest.listings" in letter.reason
    assert letter.origin == Origin("ns.fragmenty.listings", "number.observed", 2)
    assert letter.dead_lettered_at == died.replace(tzinfo=UTC)


def test_a_dead_letter_without_any_reason_is_still_listed() -> None:
    letter = read({}, b"\xff\xfe not json at all")
    assert letter.kind == "unknown"
    assert letter.schema == "?"
    assert letter.excerpt.endswith("not json at all")


def test_the_excerpt_is_one_short_line() -> None:
    letter = read({}, b'{"a":\n' + b"1" * 1000 + b"}")
    assert "\n" not in letter.excerpt
    assert len(letter.excerpt) == 120
    assert letter.excerpt.endswith("...")


def test_a_replay_drops_the_dead_lettering_headers_and_counts_itself() -> None:
    headers = {
        "x-death": [{"reason": "delivery_limit"}],
        "x-first-death-reason": "delivery_limit",
        "x-delivery-count": 5,
        "x-fragmenty-reason": "invalid: x",
        "x-original-exchange": "ns.fragmenty.listings",
        "x-original-routing-key": "number.observed",
        "x-fragmenty-replays": 1,
        "trace-id": "abc",
    }
    assert replay_headers(headers) == {"trace-id": "abc", "x-fragmenty-replays": 2}
    assert replay_headers({})["x-fragmenty-replays"] == 1


def test_a_replay_count_that_is_not_a_number_counts_as_none() -> None:
    assert replay_headers({"x-fragmenty-replays": b"junk"})["x-fragmenty-replays"] == 1
    assert replay_headers({"x-fragmenty-replays": b"3"})["x-fragmenty-replays"] == 4


def test_ingest_keeps_the_replay_count_on_what_it_dead_letters_again() -> None:
    assert Origin("x", "number.observed", 0).headers() == {
        "x-original-exchange": "x",
        "x-original-routing-key": "number.observed",
    }
    assert Origin("x", "number.observed", 3).headers()["x-fragmenty-replays"] == 3


def test_reason_matches_a_kind_exactly() -> None:
    row = read({"x-fragmenty-reason": "invalid_row: row 2"})
    assert matches(row, "invalid_row")
    assert matches(row, None)
    assert not matches(row, "invalid")
    assert not matches(row, "invalid_row: row 2")


def test_the_summary_counts_by_reason_routing_key_and_schema() -> None:
    letters = [
        read({"x-fragmenty-reason": "invalid_row: a", "x-original-routing-key": "number.observed"}),
        read({"x-fragmenty-reason": "invalid_row: b", "x-original-routing-key": "number.observed"}),
        read(
            {
                "x-fragmenty-reason": "not_json: c",
                "x-original-routing-key": "gift.observed",
                "x-fragmenty-replays": 1,
            },
            b"nope",
        ),
    ]
    summary = summarize(letters, first=2)
    assert summary["waiting"] == 3
    assert summary["by_reason"] == {"invalid_row": 2, "not_json": 1}
    assert summary["by_routing_key"] == {"number.observed": 2, "gift.observed": 1}
    assert summary["by_schema"] == {"listings_observed v2": 2, "?": 1}
    assert summary["replayed_before"] == 1
    assert [letter["reason"] for letter in summary["first"]] == ["invalid_row: a", "invalid_row: b"]
    text = render_summary("ns.ingest.listings.dlq", summary)
    assert text.splitlines()[0] == "3 dead letters waiting in ns.ingest.listings.dlq"
    assert "by reason: invalid_row 2, not_json 1" in text
    assert "reason: invalid_row: b" in text
    assert "not_json: c" not in text  # beyond the first two
