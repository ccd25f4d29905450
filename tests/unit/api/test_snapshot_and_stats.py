"""The snapshot's indexes stay right under live changes; daily statistics from history."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from fragmenty_api.listing_query import ListingQuery, page_of_rows
from fragmenty_api.snapshot import HistoryRow, ListingRow, MarketSnapshot, SortOrder
from fragmenty_api.stats import market_days
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
    snapshot = MarketSnapshot.build(
        listings=documents.values(), history=(), events=(), loaded_at=NOW
    )
    for _ in range(200):
        index = rng.randrange(350)  # some new listings, mostly changes
        document = listing_document(index, rng)
        documents[index] = document
        snapshot.upsert_listing(ListingRow.from_document(document))
    fresh = MarketSnapshot.build(listings=documents.values(), history=(), events=(), loaded_at=NOW)
    for order in SortOrder:
        assert [row.id for row in snapshot.sorted_listings[order].rows] == [
            row.id for row in fresh.sorted_listings[order].rows
        ]
        assert snapshot.sorted_listings[order].keys == fresh.sorted_listings[order].keys


def test_cached_matches_follow_live_changes() -> None:
    rng = random.Random(5)
    documents = [listing_document(index, rng) for index in range(50)]
    snapshot = MarketSnapshot.build(listings=documents, history=(), events=(), loaded_at=NOW)
    query = ListingQuery.create(asset=Asset.NUMBER, sort=SortOrder.PRICE_ASC)
    before, _ = asyncio.run(page_of_rows(snapshot, query, NOW, after=None, limit=1))
    cheapest = {**documents[7], "price_nanoton": 0}
    snapshot.upsert_listing(ListingRow.from_document(cheapest))
    after, _ = asyncio.run(page_of_rows(snapshot, query, NOW, after=None, limit=1))
    assert before[0].id != cheapest["_id"]
    assert after[0].id == cheapest["_id"]


def change(listing: str, at: datetime, kind: str, status: str, ton: int) -> HistoryRow:
    return HistoryRow(
        id=f"{at.isoformat()}:{listing}:{kind}",
        listing_id=listing,
        type=kind,
        at=at,
        status=status,
        price_nanoton=ton * 10**9,
        price_usd_cents=ton * 300,
        ends_at=None,
    )


def test_market_days_replay_floor_median_and_sales() -> None:
    day1 = datetime(2026, 11, 1, 10, tzinfo=UTC)
    day2 = day1 + timedelta(days=1)
    history = sorted(
        [
            change("number:a", day1, "listed", "auction", 100),
            change("number:b", day1, "listed", "sale", 300),
            change("number:c", day1, "listed", "sale", 200),
            change("number:a", day2, "sold", "sold", 150),
            change("number:c", day2, "delisted", "sale", 200),
            change("number:d", day2, "listed", "auction", 50),
            change("username:x", day2, "listed", "sale", 7),
        ],
        key=lambda row: (row.at, row.id),
    )
    days = market_days(history, date(2026, 10, 31), date(2026, 11, 2), [Asset.NUMBER])
    assert [(d.day.day, d.listed_count, d.floor_ton, d.median_ton) for d in days] == [
        (31, 0, None, None),
        (1, 3, Decimal(100), Decimal(200)),
        (2, 2, Decimal(50), Decimal(175)),
    ]
    assert (days[2].sold_count, days[2].volume_ton, days[2].volume_usd) == (
        1,
        Decimal(150),
        Decimal("450.00"),
    )


def sold_listing(listing: str, sold_at: datetime) -> ListingRow:
    asset, slug = listing.split(":")
    return ListingRow.from_document(
        {
            "_id": listing,
            "asset": asset,
            "slug": slug,
            "status": "sold",
            "price_nanoton": 1,
            "sold_at": sold_at,
        }
    )


def test_a_sale_counts_on_its_sold_at_day_and_days_before_the_first_census_are_backfilled() -> None:
    census = datetime(2026, 11, 3, 9, tzinfo=UTC)  # the first census reads two past sales
    history = [
        change("number:a", census, "sold", "sold", 150),
        change("number:b", census, "sold", "sold", 40),
        change("number:c", census, "listed", "sale", 70),
    ]
    listings = {
        "number:a": sold_listing("number:a", datetime(2026, 11, 1, 23, tzinfo=UTC)),
        # A sold_at after the observation belongs to a later sale: this one counts when seen.
        "number:b": sold_listing("number:b", census + timedelta(days=2)),
    }
    days = market_days(history, date(2026, 11, 1), date(2026, 11, 3), [Asset.NUMBER], listings)
    assert [(d.day.day, d.sold_count, d.volume_ton, d.backfilled) for d in days] == [
        (1, 1, Decimal(150), True),
        (2, 0, Decimal(0), True),
        (3, 1, Decimal(40), False),
    ]
    assert days[2].floor_ton == Decimal(70)
