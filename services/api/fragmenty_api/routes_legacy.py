"""``GET /api/auctions``: the original Fragmenty endpoint, so its clients keep working.

The original (Maders/fragmenty-api, Play/Scala) answered a bare JSON array of number auctions,
newest auction end first, ``page`` (from 1, default 1) and ``pageSize`` (default 10), with the
fields ``_id, id, auctionEndTimestamp, memorabilityScore, minimumBid, minimumBidInUSD, number``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from fragmenty_api.deps import Snapshot
from fragmenty_api.models import LegacyAuction
from fragmenty_api.snapshot import ListingRow, MarketSnapshot
from fragmenty_shared.contracts import Asset
from fragmenty_shared.money import NANOTON_PER_TON

router = APIRouter(tags=["original Fragmenty"])

MAX_LEGACY_PAGE_SIZE = 500
MAX_LEGACY_PAGE = 100_000


def _end_of(row: ListingRow) -> float:
    moment = row.ends_at or row.sold_at
    return moment.timestamp() if moment else float("-inf")


def _numbers_by_end(snapshot: MarketSnapshot) -> list[ListingRow]:
    numbers = (
        row
        for row in snapshot.listings.values()
        if row.asset == Asset.NUMBER.value and row.delisted_at is None
    )
    # Latest end first, as the original sorted by auctionEndTimestamp descending.
    by_id = sorted(numbers, key=lambda row: row.id)
    return sorted(by_id, key=_end_of, reverse=True)


def _legacy(row: ListingRow) -> LegacyAuction:
    moment = row.ends_at or row.sold_at
    return LegacyAuction(
        mongo_id=row.id,
        id=row.slug,
        auctionEndTimestamp=None if moment is None else moment.isoformat().replace("+00:00", "Z"),
        memorabilityScore=row.memorability or 0.0,
        minimumBid=row.price_nanoton // NANOTON_PER_TON,
        minimumBidInUSD=(row.price_usd_cents or 0) // 100,
        number=row.title,
    )


@router.get(
    "/api/auctions",
    summary="Number auctions, as the original Fragmenty served them",
    response_model=list[LegacyAuction],
    response_model_by_alias=True,
)
async def legacy_auctions(
    snapshot: Snapshot,
    page: Annotated[int, Query(ge=1, le=MAX_LEGACY_PAGE, description="Page, from 1.")] = 1,
    pageSize: Annotated[
        int, Query(ge=1, le=MAX_LEGACY_PAGE_SIZE, description="Rows per page.")
    ] = 10,
) -> list[LegacyAuction]:
    ordered = snapshot.derived("legacy_auctions", _numbers_by_end, max_age_s=5.0)
    start = (page - 1) * pageSize
    return [_legacy(row) for row in ordered[start : start + pageSize]]
