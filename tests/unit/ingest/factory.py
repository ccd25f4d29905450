"""Observations and censuses for ingest tests (unit and integration)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from fragmenty_shared.contracts import (
    Asset,
    CensusCompleted,
    CensusView,
    ListingObserved,
    ListingStatus,
)

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def observed(
    slug: str = "88800001234",
    *,
    at: datetime = T0,
    status: ListingStatus = ListingStatus.AUCTION,
    price: str = "100",
    asset: Asset = Asset.NUMBER,
    ends_at: datetime | None = None,
    sold_at: datetime | None = None,
    crawl_id: str = "crawl-1",
    **overrides: Any,
) -> ListingObserved:
    if ends_at is None and status is not ListingStatus.SOLD:
        ends_at = T0 + timedelta(days=3)
    title = f"+{slug}" if asset is Asset.NUMBER else f"@{slug}"
    fields: dict[str, Any] = {
        "crawl_id": crawl_id,
        "observed_at": at,
        "asset": asset,
        "slug": slug,
        "title": title,
        "status": status,
        "price_ton": Decimal(price),
        "price_usd": None,
        "ton_usd_rate": Decimal("5.5"),
        "ends_at": ends_at,
        "sold_at": sold_at,
        "url": f"https://fragment.com/{asset.value}/{slug}",
    }
    fields.update(overrides)
    return ListingObserved(**fields)


def census(
    crawl_id: str = "crawl-1",
    *,
    rows: int,
    started_at: datetime = T0 - timedelta(minutes=1),
    completed_at: datetime = T0 + timedelta(minutes=10),
    complete: bool = True,
    asset: Asset = Asset.NUMBER,
    status: ListingStatus = ListingStatus.AUCTION,
) -> CensusCompleted:
    return CensusCompleted(
        crawl_id=crawl_id,
        started_at=started_at,
        completed_at=completed_at,
        views=[
            CensusView(
                asset=asset,
                status=status,
                rows=rows,
                pages=max(1, rows // 50),
                complete=complete,
                reason=None if complete else "page 3 failed",
            )
        ],
    )
