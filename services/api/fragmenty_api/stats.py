"""Daily market statistics, replayed from the price history.

FerretDB's ``$group`` knows only ``$sum``/``$count`` and neither server can keep a median in a
rollup, so the statistics are computed here, in one pass over the snapshot's history in time
order: at the end of each UTC day, the listings whose latest state is "on auction" or "for sale"
give the floor, median and count. A sale counts on its ``sold_at`` day, not on the day it was
observed: the first census reads every past sale from Fragment's sold views at once. Days before
the first observation are ``backfilled``: their sales were read later, not seen as they happened.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from fragmenty_api.snapshot import HistoryRow, ListingRow, MarketSnapshot
from fragmenty_shared.contracts import Asset, EventType, ListingStatus
from fragmenty_shared.money import from_nanoton

# Daily statistics are recomputed at most this often while events keep arriving.
STATS_MAX_AGE_S = 30.0

_LISTED = frozenset({ListingStatus.AUCTION.value, ListingStatus.SALE.value})


@dataclass(frozen=True)
class DayStats:
    day: date
    asset: Asset
    listed_count: int
    floor_ton: Decimal | None
    median_ton: Decimal | None
    sold_count: int
    volume_ton: Decimal
    volume_usd: Decimal
    backfilled: bool = False


def _median_ton(sorted_nanoton: list[int]) -> Decimal:
    middle = len(sorted_nanoton) // 2
    if len(sorted_nanoton) % 2:
        return from_nanoton(sorted_nanoton[middle])
    return from_nanoton(sorted_nanoton[middle - 1] + sorted_nanoton[middle]) / 2


def _asset_of(listing_id: str) -> str:
    return listing_id.split(":", 1)[0]


def sold_moment(change: HistoryRow, listings: Mapping[str, ListingRow]) -> datetime:
    """When the sale recorded by a ``sold`` change happened: the listing's ``sold_at`` when it
    belongs to this change (a sale is observed after it happened), else the observation time."""
    listing = listings.get(change.listing_id)
    sold_at = None if listing is None else listing.sold_at
    return sold_at if sold_at is not None and sold_at <= change.at else change.at


@dataclass
class _Sales:
    count: int = 0
    nanoton: int = 0
    cents: int = 0


def _sales_by_day(
    history: list[HistoryRow], listings: Mapping[str, ListingRow]
) -> dict[tuple[date, str], _Sales]:
    sales: dict[tuple[date, str], _Sales] = defaultdict(_Sales)
    for change in history:
        if change.type == EventType.SOLD.value:
            day_sales = sales[sold_moment(change, listings).date(), _asset_of(change.listing_id)]
            day_sales.count += 1
            day_sales.nanoton += change.price_nanoton or 0
            day_sales.cents += change.price_usd_cents or 0
    return sales


def market_days(
    history: list[HistoryRow],
    first_day: date,
    last_day: date,
    assets: list[Asset],
    listings: Mapping[str, ListingRow] | None = None,
) -> list[DayStats]:
    """Statistics for each day in ``[first_day, last_day]`` and each asset, oldest first.

    ``listings`` give each sale its ``sold_at``; without them a sale counts when observed."""
    sales = _sales_by_day(history, listings or {})
    first_observed = history[0].at.date() if history else None
    listed_price: dict[str, int] = {}  # listing id -> price while it is listed
    position = 0
    result: list[DayStats] = []
    day = first_day
    while day <= last_day:
        day_end = datetime.combine(day + timedelta(days=1), time(), tzinfo=UTC)
        while position < len(history) and history[position].at < day_end:
            _apply(history[position], listed_price)
            position += 1
        by_asset: dict[str, list[int]] = defaultdict(list)
        for listing_id, price in listed_price.items():
            by_asset[_asset_of(listing_id)].append(price)
        for asset in assets:
            prices = sorted(by_asset.get(asset.value, ()))
            sold = sales.get((day, asset.value), _Sales())
            result.append(
                DayStats(
                    day=day,
                    asset=asset,
                    listed_count=len(prices),
                    floor_ton=from_nanoton(prices[0]) if prices else None,
                    median_ton=_median_ton(prices) if prices else None,
                    sold_count=sold.count,
                    volume_ton=from_nanoton(sold.nanoton),
                    volume_usd=(Decimal(sold.cents) / 100).quantize(Decimal("0.01")),
                    backfilled=first_observed is not None and day < first_observed,
                )
            )
        day += timedelta(days=1)
    return result


def _apply(change: HistoryRow, listed_price: dict[str, int]) -> None:
    """Move one listing's state forward by one change."""
    still_listed = (
        change.type != EventType.DELISTED.value
        and change.status in _LISTED
        and change.price_nanoton is not None
    )
    if still_listed:
        assert change.price_nanoton is not None
        listed_price[change.listing_id] = change.price_nanoton
    else:
        listed_price.pop(change.listing_id, None)


def snapshot_market_days(
    snapshot: MarketSnapshot, first_day: date, last_day: date, assets: list[Asset]
) -> list[DayStats]:
    """:func:`market_days` for a snapshot, computed once per snapshot and range."""
    name = f"market_days:{first_day}:{last_day}:{','.join(a.value for a in assets)}"
    return snapshot.derived(
        name,
        lambda snap: market_days(
            snap.history_in_time_order, first_day, last_day, assets, snap.listings
        ),
        max_age_s=STATS_MAX_AGE_S,
    )
