"""What a ``/listings`` query asks for, and how it is answered from a snapshot.

The same :class:`ListingQuery` serves the REST listings, the CSV export and the market map, so
a filter means exactly the same thing everywhere.
"""

from __future__ import annotations

import asyncio
import bisect
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum

from fragmenty_api.snapshot import (
    ListingRow,
    MarketSnapshot,
    SortedListings,
    SortKey,
    SortOrder,
    sort_key,
)
from fragmenty_shared.contracts import Asset, ListingStatus
from fragmenty_shared.patterns import ListingPattern, PatternError, compile_for_assets

Predicate = Callable[[ListingRow], bool]
DiscountOf = Callable[[ListingRow], float | None]
"""A listing's discount against its fair value in percent, None when it has no fair value."""


def no_discounts(_: ListingRow) -> float | None:
    return None


# Rows a scan examines between two returns to the event loop: a few milliseconds of work.
SCAN_SLICE = 2_000
# A search whose pattern matched at most one listing in this many looks up those listings
# instead of walking the whole index.
FEW_MATCHES = 4

# Longer durations mean "no limit": no listing ends a century from now, and the bound keeps
# ``now + duration`` far from datetime.max.
MAX_ENDING_WITHIN = timedelta(days=36_525)
# The duration syntax, also the OpenAPI document's pattern (so no named groups): 90m, 2h, 3d,
# 1w, or ISO 8601 (any case) PT2H30M, P1DT1S. Groups: count, unit; ISO weeks .. seconds.
DURATION_SYNTAX = (
    r"^\s*(?:([0-9]{1,6})([smhdw])|[Pp](?:([0-9]{1,4})[Ww])?(?:([0-9]{1,4})[Dd])?"
    r"(?:[Tt](?:([0-9]{1,6})[Hh])?(?:([0-9]{1,6})[Mm])?(?:([0-9]{1,7})[Ss])?)?)\s*$"
)
_DURATION = re.compile(DURATION_SYNTAX)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class Currency(StrEnum):
    TON = "ton"
    USD = "usd"


class QueryError(ValueError):
    """A query parameter is well-typed but makes no sense; ``field`` names it for the 422."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(message)
        self.field = field_name
        self.message = message


def parse_duration(text: str) -> timedelta:
    """``90m``, ``2h``, ``3d``, ``1w`` or an ISO 8601 duration such as ``PT2H30M``.

    Zero (``0m``, ``PT0S``, ``P``) is a duration like any other: nothing ends within it.
    """
    match = _DURATION.match(text)
    if match is None:
        raise QueryError(
            "ending_within", "use a duration such as 90m, 2h, 3d, 1w or ISO 8601 PT2H30M"
        )
    count, unit, *iso = match.groups()
    if unit is not None:
        seconds = int(count) * _UNIT_SECONDS[unit]
    else:
        weeks, days, hours, minutes, secs = (int(part or 0) for part in iso)
        seconds = (((weeks * 7 + days) * 24 + hours) * 60 + minutes) * 60 + secs
    return min(timedelta(seconds=seconds), MAX_ENDING_WITHIN)


def _price_in_storage_units(
    amount: Decimal | None, currency: Currency, *, upper: bool
) -> int | None:
    """A price bound in the listings' units: TON as integer nanoTON, USD as integer cents.

    Stored prices are whole units, so a finer bound is exact when rounded inwards: a lowest
    price of 1.005 USD admits what 1.01 does, a highest of 1.005 what 1.00 does.
    """
    if amount is None:
        return None
    scaled = amount * (10**9 if currency is Currency.TON else 100)
    return math.floor(scaled) if upper else math.ceil(scaled)


@dataclass(frozen=True)
class ListingQuery:
    asset: Asset | None = None
    status: ListingStatus | None = None
    q: str | None = None
    min_price: Decimal | None = None
    max_price: Decimal | None = None
    currency: Currency = Currency.TON
    min_memorability: float | None = None
    tags: tuple[str, ...] = ()
    ending_within: timedelta | None = None
    include_delisted: bool = False
    min_discount_pct: float | None = None
    sort: SortOrder = SortOrder.PRICE_ASC
    _patterns: dict[str, ListingPattern] = field(default_factory=dict, repr=False)
    _min_units: int | None = None
    _max_units: int | None = None

    @classmethod
    def create(
        cls,
        *,
        asset: Asset | None = None,
        status: ListingStatus | None = None,
        q: str | None = None,
        min_price: Decimal | None = None,
        max_price: Decimal | None = None,
        currency: Currency = Currency.TON,
        min_memorability: float | None = None,
        tags: tuple[str, ...] = (),
        ending_within: str | None = None,
        include_delisted: bool = False,
        min_discount_pct: float | None = None,
        sort: SortOrder = SortOrder.PRICE_ASC,
    ) -> ListingQuery:
        """Validate everything that a type alone cannot; raises :class:`QueryError`."""
        if min_price is not None and max_price is not None and min_price > max_price:
            raise QueryError("max_price", "max_price is below min_price")
        min_units = _price_in_storage_units(min_price, currency, upper=False)
        max_units = _price_in_storage_units(max_price, currency, upper=True)
        return cls(
            asset=asset,
            status=status,
            q=q,
            min_price=min_price,
            max_price=max_price,
            currency=currency,
            min_memorability=min_memorability,
            tags=tags,
            ending_within=None if ending_within is None else parse_duration(ending_within),
            include_delisted=include_delisted,
            min_discount_pct=min_discount_pct,
            sort=sort,
            _patterns=_compile_search(q, asset),
            _min_units=min_units,
            _max_units=max_units,
        )

    def cache_key(self) -> str:
        """Names the set of matches (everything but time-dependent filters)."""
        return repr(
            (
                self.asset,
                self.status,
                self.q,
                self.currency,
                self._min_units,
                self._max_units,
                self.min_memorability,
                self.tags,
                self.include_delisted,
                self.min_discount_pct,
                self.sort,
            )
        )

    async def slugs_found(self, snapshot: MarketSnapshot) -> dict[str, set[str]] | None:
        """Per asset, the snapshot's slugs the search pattern matches (one pass of the regular
        expression engine per :data:`SCAN_SLICE` slugs, returning to the event loop between
        them); None without a pattern."""
        if self.q is None:
            return None
        # Taken before the first await: the slugs of one moment, whatever changes meanwhile.
        lines = {asset: slug_lines(snapshot, asset) for asset in self._patterns}
        found: dict[str, set[str]] = {asset: set() for asset in self._patterns}
        for asset, pattern in self._patterns.items():
            for index, chunk in enumerate(lines[asset]):
                if index:
                    await asyncio.sleep(0)
                found[asset] |= pattern.matches_in(chunk)
        return found

    def predicate(self, now: datetime, found: dict[str, set[str]] | None = None) -> Predicate:
        """One function that tells whether a listing matches every filter of this query.

        With ``found`` (:meth:`slugs_found`), the pattern check is a set lookup, made first:
        it is usually the most selective.
        """
        checks: list[Predicate] = []
        if self.q is not None and found is not None:
            checks.append(lambda row: row.slug in found.get(row.asset, ()))
        elif self.q is not None:
            patterns = self._patterns
            checks.append(
                lambda row: (
                    (pattern := patterns.get(row.asset)) is not None and pattern.matches(row.slug)
                )
            )
        if not self.include_delisted:
            checks.append(lambda row: row.delisted_at is None)
        if self.asset is not None:
            asset = self.asset.value
            checks.append(lambda row: row.asset == asset)
        if self.status is not None:
            status = self.status.value
            checks.append(lambda row: row.status == status)
        checks.extend(self._price_checks())
        if self.min_memorability is not None:
            floor = self.min_memorability
            checks.append(lambda row: row.memorability is not None and row.memorability >= floor)
        if self.tags:
            wanted = set(self.tags)
            checks.append(lambda row: wanted.issubset(row.tags))
        if self.ending_within is not None:
            deadline = now + self.ending_within
            checks.append(
                lambda row: (
                    row.status != ListingStatus.SOLD.value
                    and row.ends_at is not None
                    and now < row.ends_at <= deadline
                )
            )
        every_check = tuple(checks)

        def matches(row: ListingRow) -> bool:
            # A plain loop: this runs for up to every listing on each request.
            for check in every_check:  # noqa: SIM110 -- all(<genexpr>) is markedly slower here
                if not check(row):
                    return False
            return True

        return matches

    def _price_checks(self) -> list[Predicate]:
        low, high = self._min_units, self._max_units
        checks: list[Predicate] = []
        if self.currency is Currency.TON:
            if low is not None:
                checks.append(lambda row: row.price_nanoton >= low)
            if high is not None:
                checks.append(lambda row: row.price_nanoton <= high)
        else:
            if low is not None:
                checks.append(
                    lambda row: row.price_usd_cents is not None and row.price_usd_cents >= low
                )
            if high is not None:
                checks.append(
                    lambda row: row.price_usd_cents is not None and row.price_usd_cents <= high
                )
        return checks


def slug_lines(snapshot: MarketSnapshot, asset: str) -> list[str]:
    """Every slug of one asset in the snapshot, one per line, :data:`SCAN_SLICE` lines to a
    string (kept until the snapshot changes)."""

    def split(snap: MarketSnapshot) -> list[str]:
        slugs = [row.slug for row in snap.listings.values() if row.asset == asset]
        return [
            "\n".join(slugs[start : start + SCAN_SLICE])
            for start in range(0, len(slugs), SCAN_SLICE)
        ]

    return snapshot.derived(f"slug_lines:{asset}", split)


def _compile_search(q: str | None, asset: Asset | None) -> dict[str, ListingPattern]:
    """The search pattern per asset it applies to; without an asset, every asset it fits."""
    if q is None:
        return {}
    try:
        compiled = compile_for_assets(q, [asset] if asset is not None else list(Asset))
    except PatternError as error:
        raise QueryError("q", str(error)) from error
    return {candidate.value: pattern for candidate, pattern in compiled.items()}


def discount_sort_key(row: ListingRow, discount: float | None) -> SortKey:
    """Furthest under fair value first; listings without a fair value last."""
    return (discount is None, -(discount or 0.0), row.id)


def row_sort_key(query: ListingQuery, row: ListingRow, discount_of: DiscountOf) -> SortKey:
    if query.sort is SortOrder.DISCOUNT:
        return discount_sort_key(row, discount_of(row))
    return sort_key(query.sort, row)


async def matching_rows(
    snapshot: MarketSnapshot,
    query: ListingQuery,
    now: datetime,
    *,
    after: SortKey | None = None,
    extra: Predicate | None = None,
    limit: int | None = None,
    discount_of: DiscountOf = no_discounts,
) -> list[ListingRow]:
    """The matching listings (at most ``limit``) in the query's order, after the cursor key
    ``after``, as one consistent picture of the market.

    ``discount_of`` serves ``min_discount_pct`` and ``sort=discount``: fair values come from
    the valuation model, not from the snapshot.
    """
    if query.min_discount_pct is not None:
        floor, other = query.min_discount_pct, extra

        def under_fair_value(row: ListingRow) -> bool:
            discount = discount_of(row)
            return discount is not None and discount >= floor and (other is None or other(row))

        extra = under_fair_value
    if query.sort is SortOrder.DISCOUNT:
        return await _by_discount(snapshot, query, now, after, extra, limit, discount_of)
    if extra is None and query.ending_within is None:
        # The same search is usually asked again (next pages, other clients): its matches are
        # kept until the snapshot changes, so a page costs a bisect and a slice.
        ordered = await snapshot.derived_async(
            f"matches:{query.cache_key()}", lambda snap: _matching_subset(snap, query, now)
        )
        start = ordered.start_after(after)
        return ordered.rows[start : None if limit is None else start + limit]
    rows, keys, found = await _rows_to_scan(snapshot, query)
    if after is not None:
        rows = rows[bisect.bisect_right(keys, after) :]
    matches = query.predicate(now, found)
    if extra is not None:
        test, more = matches, extra
        matches = lambda row: test(row) and more(row)  # noqa: E731
    return [rows[index] for index in await _indexes_matching(rows, matches, limit)]


async def _matching_subset(
    snapshot: MarketSnapshot, query: ListingQuery, now: datetime
) -> SortedListings:
    rows, keys, found = await _rows_to_scan(snapshot, query)
    picked = await _indexes_matching(rows, query.predicate(now, found), None)
    return SortedListings(query.sort, [rows[i] for i in picked], [keys[i] for i in picked])


async def _rows_to_scan(
    snapshot: MarketSnapshot, query: ListingQuery
) -> tuple[list[ListingRow], list[SortKey], dict[str, set[str]] | None]:
    """The listings a query must look at, in its order, with their sort keys and the slugs its
    pattern matched: when the pattern matched few, only their listings (looked up and
    sorted); otherwise the whole sorted index.

    All of it is one picture of the market, copied before the first await: live events may
    change the snapshot while the search returns to the event loop.
    """
    ordered = snapshot.sorted_listings[query.sort]
    rows, keys = list(ordered.rows), list(ordered.keys)
    if query.q is None:
        return rows, keys, None
    listings = dict(snapshot.listings)
    found = await query.slugs_found(snapshot)
    assert found is not None
    if sum(map(len, found.values())) * FEW_MATCHES > len(rows):
        return rows, keys, found
    candidates = [
        row
        for asset, slugs in found.items()
        for slug in slugs
        if (row := listings.get(f"{asset}:{slug}")) is not None
    ]
    keyed = sorted((sort_key(query.sort, row), row) for row in candidates)
    return [row for _, row in keyed], [key for key, _ in keyed], found


async def _indexes_matching(
    rows: list[ListingRow], matches: Predicate, limit: int | None
) -> list[int]:
    """Where ``matches`` holds (the first ``limit``), returning to the event loop every
    :data:`SCAN_SLICE` rows so that one long scan never holds up other requests."""
    picked: list[int] = []
    for start in range(0, len(rows), SCAN_SLICE):
        if start:
            await asyncio.sleep(0)
        for index in range(start, min(start + SCAN_SLICE, len(rows))):
            if matches(rows[index]):
                picked.append(index)
                if len(picked) == limit:
                    return picked
    return picked


async def _by_discount(
    snapshot: MarketSnapshot,
    query: ListingQuery,
    now: datetime,
    after: SortKey | None,
    extra: Predicate | None,
    limit: int | None,
    discount_of: DiscountOf,
) -> list[ListingRow]:
    """Matches ordered by discount, sorted per request (discounts move with every refit)."""
    rows = list(snapshot.sorted_listings[SortOrder.PRICE_ASC].rows)  # one consistent copy
    matches = query.predicate(now)
    if extra is not None:
        test, more = matches, extra
        matches = lambda row: test(row) and more(row)  # noqa: E731
    keyed = sorted(
        (discount_sort_key(rows[i], discount_of(rows[i])), rows[i])
        for i in await _indexes_matching(rows, matches, None)
    )
    start = 0 if after is None else bisect.bisect_right(keyed, after, key=lambda pair: pair[0])
    return [row for _, row in keyed[start : None if limit is None else start + limit]]


async def page_of_rows(
    snapshot: MarketSnapshot,
    query: ListingQuery,
    now: datetime,
    *,
    after: SortKey | None,
    limit: int,
    discount_of: DiscountOf = no_discounts,
) -> tuple[list[ListingRow], SortKey | None]:
    """One page and the key to continue after it (None when this page is the last)."""
    rows = await matching_rows(
        snapshot, query, now, after=after, limit=limit + 1, discount_of=discount_of
    )
    if len(rows) > limit:
        return rows[:limit], row_sort_key(query, rows[limit - 1], discount_of)
    return rows, None
