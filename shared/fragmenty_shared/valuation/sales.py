"""Sales as the estimator sees them, read from what ingest stores.

A sale is a price paid for one listing at one moment. Two places hold them: a sold listing's own
state (``status`` sold, ``price_nanoton``, ``sold_at``) and the ownership history of its item
page (``details.ownership_history``: price or null for a plain transfer, and a time). The same
sale often appears in both, so sales of one listing are de-duplicated by time.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from fragmenty_shared.contracts import Asset
from fragmenty_shared.money import from_nanoton

# One sale seen as the listing's state and as its history's newest row may differ by the
# crawler's rounding of times; two real sales of one item a minute apart do not happen.
SAME_SALE_WINDOW = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class Sale:
    asset: Asset
    slug: str
    price_ton: Decimal
    at: datetime  # aware, UTC


def sales_of_listing(
    *,
    asset: str,
    slug: str,
    status: str,
    price_nanoton: int | None,
    sold_at: datetime | None,
    details: Mapping[str, Any] | None,
) -> list[Sale]:
    """Every priced sale of one listing, oldest first, without duplicates."""
    try:
        kind = Asset(asset)
    except ValueError:
        return []
    found: list[Sale] = []
    if status == "sold" and price_nanoton and sold_at is not None:
        found.append(Sale(kind, slug, from_nanoton(price_nanoton), _utc(sold_at)))
    history = (details or {}).get("ownership_history") or ()
    for entry in history if isinstance(history, list) else ():
        sale = _history_sale(kind, slug, entry)
        if sale is not None:
            found.append(sale)
    found.sort(key=lambda sale: sale.at)
    unique: list[Sale] = []
    for sale in found:
        if unique and sale.at - unique[-1].at < SAME_SALE_WINDOW:
            continue
        unique.append(sale)
    return unique


def sales_of_listing_documents(documents: Iterable[Mapping[str, Any]]) -> Iterator[Sale]:
    """The sales in stored ``listings`` documents (see fragmenty_shared.storage)."""
    for document in documents:
        price = document.get("price_nanoton")
        sold_at = document.get("sold_at")
        details = document.get("details")
        yield from sales_of_listing(
            asset=str(document.get("asset")),
            slug=str(document.get("slug")),
            status=str(document.get("status")),
            price_nanoton=price if isinstance(price, int) and not isinstance(price, bool) else None,
            sold_at=sold_at if isinstance(sold_at, datetime) else None,
            details=details if isinstance(details, Mapping) else None,
        )


LISTING_FIELDS_FOR_SALES = {
    "asset": 1,
    "slug": 1,
    "status": 1,
    "price_nanoton": 1,
    "sold_at": 1,
    "details.ownership_history": 1,
}
"""The projection a reader of ``listings`` needs for :func:`sales_of_listing_documents`."""


def _history_sale(asset: Asset, slug: str, entry: Any) -> Sale | None:
    if not isinstance(entry, Mapping) or entry.get("price_ton") in (None, ""):
        return None  # a transfer, not a sale
    try:
        price = Decimal(str(entry["price_ton"]))
    except (InvalidOperation, KeyError):
        return None
    at = entry.get("at")
    if isinstance(at, str):
        try:
            at = datetime.fromisoformat(at)
        except ValueError:
            return None
    if not isinstance(at, datetime) or not price.is_finite() or price <= 0:
        return None
    return Sale(asset, slug, price, _utc(at))


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
