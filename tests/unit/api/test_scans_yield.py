"""Long scans return to the event loop, see one consistent market, and are shared by callers."""

from __future__ import annotations

import asyncio
import random

import pytest

from fragmenty_api.listing_query import SCAN_SLICE, ListingQuery, matching_rows, page_of_rows
from fragmenty_api.snapshot import (
    PRESORTED_ORDERS,
    ListingRow,
    MarketSnapshot,
    SortOrder,
    sort_key,
)
from fragmenty_shared.contracts import Asset
from tests.unit.api.test_snapshot_and_stats import NOW, listing_document

MARKET_SIZE = SCAN_SLICE * 5


def market() -> tuple[MarketSnapshot, list[dict[str, object]]]:
    rng = random.Random(11)
    documents = [listing_document(index, rng) for index in range(MARKET_SIZE)]
    snapshot = MarketSnapshot.build(listings=documents, loaded_at=NOW)
    return snapshot, documents


async def turns_while(work: asyncio.Task[object]) -> int:
    """How often another coroutine got to run before ``work`` finished."""
    turns = 0
    while not work.done():
        turns += 1
        await asyncio.sleep(0)
    return turns


@pytest.mark.parametrize("ending_within", [None, "3d"])  # cached and uncached paths
async def test_a_scan_of_the_whole_market_lets_others_run(ending_within: str | None) -> None:
    snapshot, _ = market()
    # A pattern most numbers match: the whole index is walked (few matches are looked up).
    query = ListingQuery.create(q="888*", sort=SortOrder.PRICE_ASC, ending_within=ending_within)
    scan = asyncio.create_task(matching_rows(snapshot, query, NOW))
    assert await turns_while(scan) >= MARKET_SIZE // SCAN_SLICE - 1
    assert len(scan.result()) > 0
    assert all(row.slug.startswith("888") for row in scan.result())


async def test_a_scan_sees_the_market_as_it_was_when_it_started() -> None:
    snapshot, documents = market()
    query = ListingQuery.create(asset=Asset.NUMBER, q="*", sort=SortOrder.PRICE_DESC)
    expected = [row.id for row in snapshot.sorted_listings[SortOrder.PRICE_DESC].rows]
    scan = asyncio.create_task(page_of_rows(snapshot, query, NOW, after=None, limit=MARKET_SIZE))
    for _ in range(3):  # the request's task, then the shared scan's: it has begun and yielded
        await asyncio.sleep(0)
    assert not scan.done()
    for document in documents[:: SCAN_SLICE // 4]:  # cheap listings become the dearest
        snapshot.upsert_listing(ListingRow.from_document({**document, "price_nanoton": 10**15}))
    rows, next_key = await scan
    assert [row.id for row in rows] == expected
    assert next_key is None
    # The change made meanwhile is seen by the next request, not hidden by the cache.
    after, _ = await page_of_rows(snapshot, query, NOW, after=None, limit=1)
    assert after[0].price_nanoton == 10**15


async def test_concurrent_callers_share_one_computation_and_survive_a_cancelled_one() -> None:
    snapshot = MarketSnapshot.empty()
    release = asyncio.Event()
    computed = 0

    async def compute(_: MarketSnapshot) -> str:
        nonlocal computed
        computed += 1
        await release.wait()
        return "value"

    callers = [asyncio.create_task(snapshot.derived_async("name", compute)) for _ in range(3)]
    await asyncio.sleep(0)
    callers[0].cancel()
    release.set()
    assert await asyncio.gather(*callers[1:]) == ["value", "value"]
    assert computed == 1
    assert await snapshot.derived_async("name", compute) == "value"  # kept: nothing changed
    assert computed == 1


@pytest.mark.parametrize("q", ["*9", "*12*", "8880000?1??", "*99*", "88800001234", "*77777*"])
@pytest.mark.parametrize("sort", PRESORTED_ORDERS)
async def test_a_search_that_matches_few_listings_finds_what_a_walk_finds(
    q: str, sort: SortOrder
) -> None:
    snapshot, _ = market()
    query = ListingQuery.create(q=q, sort=sort, status=None)
    walked = [row for row in snapshot.sorted_listings[sort].rows if query.predicate(NOW)(row)]
    assert len(walked) * 4 <= MARKET_SIZE  # the lookup path
    assert await matching_rows(snapshot, query, NOW) == walked
    # After a cursor, and with a time filter (the uncached path), the same.
    middle = sort_key(sort, walked[len(walked) // 2]) if walked else None
    timed = ListingQuery.create(q=q, sort=sort, ending_within="100w")
    assert await matching_rows(snapshot, timed, NOW, after=middle) == [
        row
        for row in snapshot.sorted_listings[sort].rows
        if timed.predicate(NOW)(row) and (middle is None or sort_key(sort, row) > middle)
    ]
