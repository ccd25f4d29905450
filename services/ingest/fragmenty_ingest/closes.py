"""The listed market at the close of a day: how many listings, the floor and the median price.

A median cannot be kept with ``$inc``, but ingest holds every listing's state in memory (bounded
by the market), so after each batch that changed something it computes the figures of the
market as it now is, exactly, and stores them as the close of the batch's day
(``daily_close``, ``_id`` = ``"<YYYY-MM-DD>:<asset>"``): the last batch of a day writes its
close. A day without a batch changed nothing, so readers carry the previous close forward.

:func:`closes_from_history` computes the same documents from a listing history replayed in
time order (``fragmenty-ingest migrate`` builds the past closes with it).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Protocol

from fragmenty_shared.contracts import Asset, EventType, ListingStatus
from fragmenty_shared.money import from_nanoton

_LISTED = frozenset({ListingStatus.AUCTION, ListingStatus.SALE})


def close_id(day: date, asset: Asset | str) -> str:
    return f"{day.isoformat()}:{Asset(asset).value}"


def median_ton(sorted_nanoton: list[int]) -> Decimal:
    middle = len(sorted_nanoton) // 2
    if len(sorted_nanoton) % 2:
        return from_nanoton(sorted_nanoton[middle])
    return from_nanoton(sorted_nanoton[middle - 1] + sorted_nanoton[middle]) / 2


def close_document(day: date, asset: Asset, prices: Iterable[int]) -> dict[str, Any]:
    ordered = sorted(prices)
    return {
        "_id": close_id(day, asset),
        "day": day.isoformat(),
        "asset": asset.value,
        "listed_count": len(ordered),
        "floor_nanoton": ordered[0] if ordered else None,
        "median_ton": str(median_ton(ordered)) if ordered else None,  # exact, maybe half a nanoTON
    }


class _Listed(Protocol):
    """Something with a listing's current asset, status, price and delisting (a state)."""

    @property
    def asset(self) -> Asset: ...
    @property
    def status(self) -> ListingStatus: ...
    @property
    def price_nanoton(self) -> int: ...
    @property
    def delisted_at(self) -> datetime | None: ...


def closes_of(states: Iterable[_Listed], day: date) -> list[dict[str, Any]]:
    """The close of ``day`` for every asset, from the states of all listings."""
    prices: dict[Asset, list[int]] = {asset: [] for asset in Asset}
    for state in states:
        if state.status in _LISTED and state.delisted_at is None:
            prices[state.asset].append(state.price_nanoton)
    return [close_document(day, asset, prices[asset]) for asset in Asset]


@dataclass(frozen=True, slots=True)
class HistoryChange:
    """One change of one listing, as a replay needs it."""

    listing_id: str
    at: datetime
    type: str
    status: str | None
    price_nanoton: int | None


def closes_from_history(changes: Iterable[HistoryChange]) -> Iterator[dict[str, Any]]:
    """Closes of every day with a change, from changes in time order."""
    listed: dict[str, int] = {}  # listing id -> price while it is listed
    day: date | None = None
    for change in changes:
        change_day = change.at.date()
        if day is not None and change_day != day:
            yield from _closes_of_prices(listed, day)
        day = change_day
        still_listed = (
            change.type != EventType.DELISTED.value
            and change.status in {status.value for status in _LISTED}
            and change.price_nanoton is not None
        )
        if still_listed:
            assert change.price_nanoton is not None
            listed[change.listing_id] = change.price_nanoton
        else:
            listed.pop(change.listing_id, None)
    if day is not None:
        yield from _closes_of_prices(listed, day)


def _closes_of_prices(listed: dict[str, int], day: date) -> Iterator[dict[str, Any]]:
    by_asset: dict[str, list[int]] = defaultdict(list)
    for listing_id, price in listed.items():
        by_asset[listing_id.split(":", 1)[0]].append(price)
    for asset in Asset:
        yield close_document(day, asset, by_asset.get(asset.value, ()))
