"""Unit tests of the api's pure pieces: cursors, durations, the rate limiter, CSV safety."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import pytest

from fragmenty_api.csv_export import _spreadsheet_safe
from fragmenty_api.cursor import CursorError, decode_cursor, encode_cursor
from fragmenty_api.listing_query import QueryError, parse_duration
from fragmenty_api.security import RateLimitExceeded, TokenBucketLimiter
from fragmenty_api.snapshot import SortOrder


@pytest.mark.parametrize(
    ("order", "key"),
    [
        (SortOrder.PRICE_ASC, (10**18, "number:88800001234")),
        (SortOrder.ENDING, (True, 0, "username:boris")),
        (SortOrder.MEMORABILITY, (False, -0.5556, "number:8888888")),
    ],
)
def test_a_cursor_round_trips_its_key(order: SortOrder, key: tuple[object, ...]) -> None:
    assert decode_cursor(encode_cursor(order, key), order) == key


def forged(payload: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode()


@pytest.mark.parametrize(
    "cursor",
    [
        "%%%",
        forged({"not": "a list"}),
        forged(["price_asc", [1]]),
        forged(["price_asc", ["1", "x"]]),
        forged(["price_asc", [True, "x"]]),
        forged(["price_asc", [1, "x" * 201]]),
        "A" * 513,
    ],
)
def test_a_malformed_cursor_is_refused(cursor: str) -> None:
    with pytest.raises(CursorError):
        decode_cursor(cursor, SortOrder.PRICE_ASC)


def test_a_cursor_of_another_order_is_refused() -> None:
    cursor = encode_cursor(SortOrder.PRICE_ASC, (1, "x"))
    with pytest.raises(CursorError, match="another sort, not sort=price_desc") as refused:
        decode_cursor(cursor, SortOrder.PRICE_DESC)
    assert "price_asc" not in str(refused.value)  # nothing of the cursor is echoed


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90m", timedelta(minutes=90)),
        ("2h", timedelta(hours=2)),
        ("3d", timedelta(days=3)),
        ("1w", timedelta(weeks=1)),
        ("PT2H30M", timedelta(hours=2, minutes=30)),
        ("P1DT1S", timedelta(days=1, seconds=1)),
        ("pt2h", timedelta(hours=2)),
        (" 2h ", timedelta(hours=2)),
        ("0m", timedelta(0)),
        ("P", timedelta(0)),
        ("999999w", timedelta(days=36_525)),  # beyond a century: no limit
    ],
)
def test_durations(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "2", "h", "2H", "2 hours", "-1h", "1234567s", "P1H", "٢h"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(QueryError):
        parse_duration(text)


def test_token_bucket_allows_a_burst_then_refills_per_client() -> None:
    limiter = TokenBucketLimiter(per_minute=3)
    for _ in range(3):
        limiter.take("a", now=100.0)
    with pytest.raises(RateLimitExceeded) as refused:
        limiter.take("a", now=100.0)
    assert refused.value.retry_after_s == pytest.approx(20.0)
    limiter.take("b", now=100.0)  # another client is not affected
    limiter.take("a", now=120.0)  # one token back after 20 s


def test_token_bucket_forgets_the_oldest_clients_beyond_its_bound() -> None:
    limiter = TokenBucketLimiter(per_minute=1, max_clients=2)
    limiter.take("a", now=0.0)
    limiter.take("b", now=0.0)
    limiter.take("c", now=0.0)
    limiter.take("a", now=0.0)  # "a" was forgotten, so it starts with a full bucket again


@pytest.mark.parametrize(
    ("text", "safe"),
    [
        ("+888 0000 1234", "'+888 0000 1234"),
        ("@boris", "'@boris"),
        ("=1+1", "'=1+1"),
        ("boris", "boris"),
    ],
)
def test_csv_cells_never_start_a_formula(text: str, safe: str) -> None:
    assert _spreadsheet_safe(text) == safe
