"""/api/v1/listings against the real database: every filter, every sort, paging to the end."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from fragmenty_shared.contracts import Asset, ListingStatus
from tests.integration.api.conftest import NOW, ClientFactory
from tests.integration.api.market_seed import SeedListing


def ids(page: dict[str, Any]) -> list[str]:
    return [item["id"] for item in page["items"]]


def on_market(market: list[SeedListing]) -> list[SeedListing]:
    return [listing for listing in market if listing.delisted_at is None]


async def fetch_all(client: Any, params: dict[str, Any], limit: int) -> list[str]:
    """Follow next_cursor to the end; fail on a loop."""
    seen: list[str] = []
    cursor = None
    for _ in range(100):
        response = await client.get(
            "/api/v1/listings",
            params={**params, "limit": limit, **({"cursor": cursor} if cursor else {})},
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert len(body["items"]) <= limit
        seen.extend(ids(body))
        cursor = body["next_cursor"]
        if cursor is None:
            return seen
    raise AssertionError("pagination did not end")


async def test_default_is_every_listing_on_the_market_cheapest_first(
    market: list[SeedListing], make_client: ClientFactory
) -> None:
    async with make_client() as client:
        response = await client.get("/api/v1/listings")
    assert response.status_code == 200
    expected = sorted(on_market(market), key=lambda listing: (listing.price_ton, listing.id))
    assert ids(response.json()) == [listing.id for listing in expected]
    first = response.json()["items"][0]
    assert first["price_ton"] == "10"
    assert first["price_usd"] == "32.50"
    assert response.json()["next_cursor"] is None


FILTER_CASES: list[tuple[dict[str, Any], set[str]]] = [
    (
        {"asset": "username"},
        {"username:boris", "username:borisov", "username:crypto", "username:evil"},
    ),
    ({"status": "sold"}, {"number:88855554444", "username:crypto"}),
    ({"status": "sale", "asset": "number"}, {"number:88800000123"}),
    ({"q": "*7777"}, {"number:88800007777", "number:88812347777"}),
    ({"q": "888 0000 0???"}, {"number:88800000123", "number:88800000999"}),
    ({"q": "+888 8 888"}, {"number:8888888"}),
    ({"q": "bor"}, {"username:boris", "username:borisov"}),
    ({"q": "@BORIS", "asset": "username"}, {"username:boris", "username:borisov"}),
    (
        {"min_price": "900", "max_price": "2100"},
        {"number:88800000123", "number:88812347777", "number:88855554444"},
    ),
    ({"min_price": "1200.5", "max_price": "1200.5"}, {"number:88812347777"}),
    # 3.25 USD per TON: 300 TON = 975 USD, 900 TON = 2925 USD.
    (
        {"min_price": "975", "max_price": "2925", "currency": "usd"},
        {"number:88800000999", "number:88800000123"},
    ),
    ({"min_memorability": "1"}, {"number:8888888"}),
    ({"tags": ["short"]}, {"number:8888888"}),
    ({"tags": ["short", "repdigit"]}, {"number:8888888"}),
    ({"ending_within": "6h"}, {"number:88800007777", "number:88812347777"}),
    ({"ending_within": "PT1H"}, {"number:88800007777"}),
    ({"ending_within": "1d"}, {"number:88800007777", "number:88812347777", "username:boris"}),
    ({"include_delisted": "true", "q": "*2222"}, {"number:88811112222"}),
    ({"q": "*2222"}, set()),
]


@pytest.mark.parametrize(("params", "expected"), FILTER_CASES)
async def test_each_filter_selects_exactly_the_matching_listings(
    market: list[SeedListing],
    make_client: ClientFactory,
    params: dict[str, Any],
    expected: set[str],
) -> None:
    async with make_client() as client:
        response = await client.get("/api/v1/listings", params=params)
    assert response.status_code == 200, response.text
    assert set(ids(response.json())) == expected


def expected_order(market: list[SeedListing], sort: str) -> list[str]:
    listings = on_market(market)

    def end_key(listing: SeedListing) -> tuple[Any, ...]:
        return (listing.ends_at is None, listing.ends_at or NOW, listing.id)

    keys = {
        "price_asc": lambda listing: (listing.price_ton, listing.id),
        "price_desc": lambda listing: (-listing.price_ton, listing.id),
        "ending": end_key,
        "listed": lambda listing: (-listing.first_seen_at.timestamp(), listing.id),
        "memorability": lambda listing: (
            listing.memorability()[0] is None,
            -(listing.memorability()[0] or 0),
            listing.id,
        ),
    }
    return [listing.id for listing in sorted(listings, key=keys[sort])]


@pytest.mark.parametrize("sort", ["price_asc", "price_desc", "ending", "listed", "memorability"])
async def test_each_sort_pages_to_the_end_without_duplicates_or_gaps(
    market: list[SeedListing], make_client: ClientFactory, sort: str
) -> None:
    async with make_client() as client:
        whole = await client.get("/api/v1/listings", params={"sort": sort, "limit": 500})
        paged = await fetch_all(client, {"sort": sort}, limit=3)
    assert ids(whole.json()) == expected_order(market, sort)
    assert paged == ids(whole.json())


async def test_paging_with_a_filter_and_a_cursor_keeps_the_filter(
    market: list[SeedListing], make_client: ClientFactory
) -> None:
    async with make_client() as client:
        paged = await fetch_all(client, {"asset": "number", "sort": "price_desc"}, limit=2)
    numbers = [listing for listing in on_market(market) if listing.asset is Asset.NUMBER]
    assert paged == [
        listing.id for listing in sorted(numbers, key=lambda item: (-item.price_ton, item.id))
    ]


async def test_a_listing_added_between_pages_is_neither_repeated_nor_skipping_others(
    market: list[SeedListing], make_client: ClientFactory, mongo_db: Any
) -> None:
    async with make_client() as client:
        first = (await client.get("/api/v1/listings", params={"limit": 4})).json()
        cheap = SeedListing(Asset.USERNAME, "newcomer", ListingStatus.SALE, Decimal(1), NOW)
        await mongo_db["listings"].insert_one(cheap.listing_document())
        await client._transport.app.state.api.store.reload()  # type: ignore[attr-defined]
        rest = await fetch_all_from(client, first["next_cursor"])
    everything = ids(first) + rest
    assert len(everything) == len(set(everything))
    assert set(everything) == {listing.id for listing in on_market(market)}


async def fetch_all_from(client: Any, cursor: str) -> list[str]:
    seen: list[str] = []
    while cursor:
        body = (await client.get("/api/v1/listings", params={"limit": 4, "cursor": cursor})).json()
        seen.extend(ids(body))
        cursor = body["next_cursor"]
    return seen


BAD_INPUT: list[tuple[dict[str, Any], str]] = [
    ({"limit": 0}, "limit"),
    ({"limit": 501}, "limit"),
    ({"limit": "many"}, "limit"),
    ({"sort": "cheapest"}, "sort"),
    ({"asset": "gift"}, "asset"),
    ({"status": "gone"}, "status"),
    ({"q": "*77a7", "asset": "number"}, "q"),
    ({"q": "a" * 65}, "q"),
    ({"q": "!!"}, "q"),
    ({"min_price": "-1"}, "min_price"),
    ({"min_price": "NaN"}, "min_price"),
    ({"min_price": "1.0000000001"}, "min_price"),
    ({"min_price": "١٢٣"}, "min_price"),  # Arabic-Indic digits: Decimal would read them
    ({"min_price": "1_000"}, "min_price"),
    ({"min_price": "1e3"}, "min_price"),
    ({"max_price": "+5"}, "max_price"),
    ({"max_price": "1000000000000"}, "max_price"),
    ({"min_price": "10", "max_price": "5"}, "max_price"),
    ({"currency": "eur"}, "currency"),
    ({"min_memorability": "1.5"}, "min_memorability"),
    ({"tags": ["Bad Tag"]}, "tags"),
    ({"tags": [f"t{i}" for i in range(9)]}, "tags"),
    ({"ending_within": "soon"}, "ending_within"),
    ({"ending_within": "2H"}, "ending_within"),
    ({"cursor": "not-a-cursor"}, "cursor"),
    ({"cursor": "bm90IGpzb24"}, "cursor"),  # well-formed base64, not a cursor
]


@pytest.mark.parametrize(("params", "field"), BAD_INPUT)
async def test_out_of_bounds_input_is_a_422_naming_the_parameter(
    market: list[SeedListing], make_client: ClientFactory, params: dict[str, Any], field: str
) -> None:
    async with make_client() as client:
        response = await client.get("/api/v1/listings", params=params)
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert any(error["loc"][:2] == ["query", field] for error in detail), detail
    assert all(set(error) == {"loc", "msg", "type"} for error in detail)


async def test_a_cursor_of_another_sort_is_refused(
    market: list[SeedListing], make_client: ClientFactory
) -> None:
    async with make_client() as client:
        first = (await client.get("/api/v1/listings", params={"limit": 2})).json()
        response = await client.get(
            "/api/v1/listings", params={"cursor": first["next_cursor"], "sort": "ending"}
        )
    assert response.status_code == 422
    assert "sort" in response.json()["detail"][0]["msg"]
