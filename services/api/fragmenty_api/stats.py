"""Daily market statistics, read from the rollups ingest maintains (never replayed from history).

Per UTC day and asset:

- listed count, floor and median of the listed prices at the end of the day: ``daily_close``
  (written by ingest after each batch; a day without a batch changed nothing, so the previous
  close carries forward);
- sold count and volume of the sales whose ``sold_at`` is that day: ``daily_rollups``
  (``<day>:<asset>:sold``);
- ``backfilled``: the day is before the first change ingest recorded, so its sales were read
  later from Fragment's list of recent sales rather than seen as they happened
  (``ingest_meta``).

A range of at most a year is a few hundred small documents read by ``_id``, from collections of
a few documents per day; results are cached for a short while.
"""

from __future__ import annotations

import time as clock
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from fragmenty_shared.contracts import Asset
from fragmenty_shared.money import from_nanoton
from fragmenty_shared.schema import FIRST_OBSERVED_ID, Collections

# Statistics are read again at most this often per range (the figures move slowly).
STATS_MAX_AGE_S = 30.0
_MAX_CACHED = 64

Document = dict[str, Any]


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
    backfilled: bool


def _days(first_day: date, last_day: date) -> list[date]:
    return [first_day + timedelta(days=n) for n in range((last_day - first_day).days + 1)]


class MarketStatsReader:
    def __init__(self, database: AsyncDatabase[Document]) -> None:
        self._closes = database[Collections.DAILY_CLOSE]
        self._rollups = database[Collections.DAILY_ROLLUPS]
        self._meta = database[Collections.INGEST_META]
        self._cache: dict[tuple[date, date, tuple[Asset, ...]], tuple[float, list[DayStats]]] = {}

    async def market_days(
        self, first_day: date, last_day: date, assets: list[Asset]
    ) -> list[DayStats]:
        """Statistics for each day in ``[first_day, last_day]`` and each asset, oldest first."""
        key = (first_day, last_day, tuple(assets))
        cached = self._cache.get(key)
        now = clock.monotonic()
        if cached is not None and now - cached[0] < STATS_MAX_AGE_S:
            return cached[1]
        fresh = await self._read(first_day, last_day, assets)
        if len(self._cache) >= _MAX_CACHED:
            self._cache.clear()  # bounded: clients choose the ranges
        self._cache[key] = (now, fresh)
        return fresh

    async def _read(self, first_day: date, last_day: date, assets: list[Asset]) -> list[DayStats]:
        days = _days(first_day, last_day)
        close_ids = [f"{day.isoformat()}:{asset.value}" for day in days for asset in assets]
        closes = {d["_id"]: d async for d in self._closes.find({"_id": {"$in": close_ids}})}
        sold_ids = [f"{day.isoformat()}:{asset.value}:sold" for day in days for asset in assets]
        sales = {d["_id"]: d async for d in self._rollups.find({"_id": {"$in": sold_ids}})}
        first = await self._meta.find_one({"_id": FIRST_OBSERVED_ID})
        first_observed_day = None if first is None else _day_of(first["value"])
        result: list[DayStats] = []
        for asset in assets:
            close = await self._close_before(asset, first_day)
            for day in days:
                close = closes.get(f"{day.isoformat()}:{asset.value}", close)
                sale = sales.get(f"{day.isoformat()}:{asset.value}:sold") or {}
                result.append(_day_stats(day, asset, close, sale, first_observed_day))
        result.sort(key=lambda stats: (stats.day, list(Asset).index(stats.asset)))
        return result

    async def _close_before(self, asset: Asset, day: date) -> Document | None:
        """The newest close before ``day`` (index ``(asset, day)``; a small collection)."""
        return await self._closes.find_one(
            {"asset": asset.value, "day": {"$lt": day.isoformat()}}, sort=[("day", -1)]
        )


def _day_of(value: Any) -> date | None:
    return value.date() if isinstance(value, datetime) else None


def _day_stats(
    day: date,
    asset: Asset,
    close: Document | None,
    sale: Document,
    first_observed_day: date | None,
) -> DayStats:
    floor = None if close is None else close.get("floor_nanoton")
    median = None if close is None else close.get("median_ton")
    return DayStats(
        day=day,
        asset=asset,
        listed_count=0 if close is None else int(close.get("listed_count", 0)),
        floor_ton=None if floor is None else from_nanoton(int(floor)),
        median_ton=None if median is None else Decimal(str(median)),
        sold_count=int(sale.get("sold_count", 0)),
        volume_ton=from_nanoton(int(sale.get("volume_nanoton", 0))),
        volume_usd=(Decimal(int(sale.get("volume_usd_cents", 0))) / 100).quantize(Decimal("0.01")),
        backfilled=first_observed_day is not None and day < first_observed_day,
    )
