"""The snapshot's indexes stay right under live changes."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta

from fragmenty_api.listing_query import ListingQuery, page_of_rows
from fragmenty_api.snapshot import ListingRow, MarketSnapshot, SortOrder
from fragmenty_shared.contracts import Asset

NOW = datetime(2026, 11, 27, 12, tzinfo=UTC)


def listing_document(index: int, rng: random.Random) -> dict[str, object]:
    slug = f"888{index:08d}"
    return {
        "_id": f"number:{slug}",
        "asset": "number",
        "slug": slug,
        "title": slug,
        "status": rng.choice(["auction", "sale", "sold"]),
        "price_nanoton": rng.randint(1, 50) * 10**9,
        "price_usd_cents": None,
        "ends_at": rng.choice([None, NOW + timedelta(hours=rng.randint(1, 50))]),
        "memorability": rng.choice([None, rng.random()]),
        "tags": [],
        "first_seen_at": NOW - timedelta(hours=rng.randint(1, 50)),
    }


def test_upserts_keep_every_order_identical_to_a_fresh_build() -> None:
    rng = random.Random(3)
    documents = {index: listing_document(index, rng) for index in range(300)}
    snapshot = MarketSnapshot.build(listings=documents.values(), loaded_at=NOW)
    for _ in range(200):
        index = rng.randrange(350)  # some new listings, mostly changes
        document = listing_document(index, rng)
        documents[index] = document
        snapshot.upsert_listing(ListingRow.from_document(document))
    fresh = MarketSnapshot.build(listings=documents.values(), loaded_at=NOW)
    for order in fresh.sorted_listings:  # every presorted order
        assert [row.id for row in snapshot.sorted_listings[order].rows] == [
            row.id for row in fresh.sorted_listings[order].rows
        ]
        assert snapshot.sorted_listings[order].keys == fresh.sorted_listings[order].keys


def test_cached_matches_follow_live_changes() -> None:
    rng = random.Random(5)
    documents = [listing_document(index, rng) for index in range(50)]
    snapshot = MarketSnapshot.build(listings=documents, loaded_at=NOW)
    query = ListingQuery.create(asset=Asset.NUMBER, sort=SortOrder.PRICE_ASC)
    before, _ = asyncio.run(page_of_rows(snapshot, query, NOW, after=None, limit=1))
    cheapest = {**documents[7], "price_nanoton": 0}
    snapshot.upsert_listing(ListingRow.from_document(cheapest))
    after, _ = asyncio.run(page_of_rows(snapshot, query, NOW, after=None, limit=1))
    assert before[0].id != cheapest["_id"]
    assert after[0].id == cheapest["_id"]
