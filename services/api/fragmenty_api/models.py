"""Response models: only public fields, exact decimals as strings, every field described.

Rows from the snapshot are turned into these models here and nowhere else, so what the API
exposes is decided in one file.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from fragmenty_api.snapshot import HistoryRow, ListingRow
from fragmenty_shared.contracts import Asset, EventType, ListingStatus, PriceEvent
from fragmenty_shared.money import from_nanoton
from fragmenty_shared.valuation.estimator import Valuation

FRAGMENT_URL = "https://fragment.com"


def usd_from_cents(cents: int | None) -> Decimal | None:
    return None if cents is None else (Decimal(cents) / 100).quantize(Decimal("0.01"))


def fragment_url(asset: str, slug: str) -> str:
    """The listing's page on Fragment, built from validated parts rather than a scraped href."""
    return f"{FRAGMENT_URL}/{asset}/{slug}"


class PublicModel(BaseModel):
    model_config = ConfigDict(frozen=True)


class ListingPublic(PublicModel):
    model_config = ConfigDict(
        frozen=True,
        json_schema_extra={
            "examples": [
                {
                    "id": "number:88800001234",
                    "asset": "number",
                    "slug": "88800001234",
                    "title": "+888 0000 1234",
                    "status": "auction",
                    "price_ton": "1250.5",
                    "price_usd": "4051.62",
                    "ends_at": "2026-12-01T18:00:00Z",
                    "sold_at": None,
                    "memorability": 0.5556,
                    "tags": [],
                    "first_seen_at": "2026-11-20T09:12:00Z",
                    "changed_at": "2026-11-27T08:00:00Z",
                    "delisted_at": None,
                    "url": "https://fragment.com/number/88800001234",
                    "fair_value_ton": "1800",
                    "discount_pct": 30.53,
                }
            ]
        },
    )

    id: str = Field(description="Stable id: '<asset>:<slug>'.")
    asset: Asset
    slug: str = Field(description="The id in Fragment's URL.")
    title: str = Field(description="As Fragment shows it: '+888 0000 1234', '@boris'.")
    status: ListingStatus
    price_ton: Decimal = Field(
        description="Exact TON (decimal string): minimum next bid, fixed price or sale price."
    )
    price_usd: Decimal | None = Field(description="USD at the observed rate (decimal string).")
    ends_at: datetime | None = Field(description="Auction end or sale expiry (UTC).")
    sold_at: datetime | None = Field(description="Sale time of a sold listing (UTC).")
    memorability: float | None = Field(description="0..1, numbers only.")
    tags: list[str] = Field(description="Named patterns of the number, e.g. 'repdigit'.")
    first_seen_at: datetime | None = Field(description="When Fragmenty first saw it.")
    changed_at: datetime | None = Field(description="When its state last changed.")
    delisted_at: datetime | None = Field(description="When it left the market unsold, if it did.")
    url: str = Field(description="The listing's page on Fragment.")
    fair_value_ton: Decimal | None = Field(
        default=None,
        description=(
            "Estimated fair value in TON (the expected next sale price), null while its asset "
            "has too few sales; band and comparables at /api/v1/valuation/{asset}/{slug}."
        ),
    )
    discount_pct: float | None = Field(
        default=None,
        description="How far the price is under the fair value, in percent (negative: above).",
    )

    @classmethod
    def from_row(cls, row: ListingRow, valuation: Valuation | None = None) -> ListingPublic:
        price_ton = from_nanoton(row.price_nanoton)
        return cls(
            id=row.id,
            asset=Asset(row.asset),
            slug=row.slug,
            title=row.title,
            status=ListingStatus(row.status),
            price_ton=price_ton,
            price_usd=usd_from_cents(row.price_usd_cents),
            ends_at=row.ends_at,
            sold_at=row.sold_at,
            memorability=row.memorability,
            tags=list(row.tags),
            first_seen_at=row.first_seen_at,
            changed_at=row.changed_at,
            delisted_at=row.delisted_at,
            url=fragment_url(row.asset, row.slug),
            fair_value_ton=None if valuation is None else valuation.expected_ton,
            discount_pct=None if valuation is None else valuation.discount_pct(price_ton),
        )


class ListingPage(PublicModel):
    items: list[ListingPublic]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last page."
    )


class HistoryPoint(PublicModel):
    at: datetime = Field(description="When the change was observed.")
    type: str = Field(description="What changed: listed, price_changed, sold, ...")
    status: ListingStatus | None
    price_ton: Decimal | None
    price_usd: Decimal | None
    ends_at: datetime | None

    @classmethod
    def from_row(cls, row: HistoryRow) -> HistoryPoint:
        status = row.status if row.status in ListingStatus.__members__.values() else None
        return cls(
            at=row.at,
            type=row.type,
            status=None if status is None else ListingStatus(status),
            price_ton=None if row.price_nanoton is None else from_nanoton(row.price_nanoton),
            price_usd=usd_from_cents(row.price_usd_cents),
            ends_at=row.ends_at,
        )


class TradeEntry(PublicModel):
    """One row of Fragment's bid or ownership history for the listing."""

    price_ton: Decimal | None = Field(description="Null for a plain transfer.")
    at: datetime
    wallet: str | None


class ListingDetail(PublicModel):
    listing: ListingPublic
    highest_bid_ton: Decimal | None = Field(description="Current highest bid, when known.")
    min_bid_ton: Decimal | None = Field(description="Minimum next bid, when known.")
    owner: str | None = Field(description="Owner's wallet, when Fragment shows it.")
    history: list[HistoryPoint] = Field(description="Every observed change, oldest first.")
    events: list[PriceEvent] = Field(description="Events about this listing, oldest first.")
    bid_history: list[TradeEntry] = Field(description="Bids from the item page, newest first.")
    ownership_history: list[TradeEntry] = Field(
        description="Sales and transfers from the item page, newest first."
    )


class ComparableSale(PublicModel):
    slug: str = Field(description="The listing sold.")
    price_ton: Decimal = Field(description="What it sold for.")
    at: datetime = Field(description="When it sold.")
    why: str = Field(description="'same listing', or 'similar: ' and the features it shares.")
    weight: float = Field(description="Its share of the comparables' weight, 0..1.")


class ValuationPublic(PublicModel):
    model_config = ConfigDict(
        frozen=True,
        json_schema_extra={
            "examples": [
                {
                    "asset": "number",
                    "slug": "88800001234",
                    "listed": True,
                    "price_ton": "1250",
                    "expected_ton": "1800",
                    "low_ton": "1210",
                    "high_ton": "2680",
                    "prior_ton": "1500",
                    "discount_pct": 30.56,
                    "confidence": 0.62,
                    "comparables": [
                        {
                            "slug": "88800001234",
                            "price_ton": "1700",
                            "at": "2026-09-01T10:00:00Z",
                            "why": "same listing",
                            "weight": 0.41,
                        }
                    ],
                    "fitted_at": "2026-11-27T08:00:00Z",
                    "sales_in_model": 5762,
                }
            ]
        },
    )

    asset: Asset
    slug: str
    listed: bool = Field(description="On the market now (on auction or for sale).")
    price_ton: Decimal | None = Field(description="Its current price, when Fragmenty knows it.")
    expected_ton: Decimal = Field(description="Fair value: the expected next sale price.")
    low_ton: Decimal = Field(description="Bottom of the 80 % band (10th percentile).")
    high_ton: Decimal = Field(description="Top of the 80 % band (90th percentile).")
    prior_ton: Decimal = Field(description="What its features alone say, before comparables.")
    discount_pct: float | None = Field(
        description="How far the current price is under fair value, in percent."
    )
    confidence: float = Field(
        description="0: the features alone; 1: comparables left only sale-to-sale noise."
    )
    comparables: list[ComparableSale] = Field(description="The sales it rests on, heaviest first.")
    fitted_at: datetime = Field(description="When the model was last fitted.")
    sales_in_model: int = Field(description="Sales of this asset the model learned from.")

    @classmethod
    def of(cls, valuation: Valuation, row: ListingRow | None) -> ValuationPublic:
        price = None if row is None else from_nanoton(row.price_nanoton)
        return cls(
            asset=valuation.asset,
            slug=valuation.slug,
            listed=row is not None and row.is_listed,
            price_ton=price,
            expected_ton=valuation.expected_ton,
            low_ton=valuation.low_ton,
            high_ton=valuation.high_ton,
            prior_ton=valuation.prior_ton,
            discount_pct=None if price is None else valuation.discount_pct(price),
            confidence=valuation.confidence,
            comparables=[
                ComparableSale(
                    slug=c.slug, price_ton=c.price_ton, at=c.at, why=c.why, weight=c.weight
                )
                for c in valuation.comparables
            ],
            fitted_at=valuation.fitted_at,
            sales_in_model=valuation.sales_in_model,
        )


class EventPage(PublicModel):
    items: list[PriceEvent]
    next_since: int = Field(
        description="Pass as `since` for the events after this page: the position (`seq`) of the "
        "last event looked at (events the filters left out included), or `since` itself when "
        "there was nothing newer."
    )


class MarketDay(PublicModel):
    model_config = ConfigDict(
        frozen=True,
        json_schema_extra={
            "examples": [
                {
                    "day": "2026-11-26",
                    "asset": "number",
                    "listed_count": 1480,
                    "floor_ton": "720",
                    "median_ton": "1450",
                    "sold_count": 12,
                    "volume_ton": "31250",
                    "volume_usd": "101250.00",
                    "backfilled": False,
                }
            ]
        },
    )

    day: date = Field(description="UTC day.")
    asset: Asset
    listed_count: int = Field(description="Listings on auction or for sale at the end of the day.")
    floor_ton: Decimal | None = Field(description="Lowest listed price at the end of the day.")
    median_ton: Decimal | None = Field(description="Median listed price at the end of the day.")
    sold_count: int = Field(description="Sales whose `sold_at` is that day.")
    volume_ton: Decimal = Field(description="Sum of those sales' prices (TON).")
    volume_usd: Decimal = Field(description="Sum of those sales' prices (USD).")
    backfilled: bool = Field(
        default=False,
        description="The day is before the first crawl: its sales were read later from "
        "Fragment's list of recent sales, not seen as they happened.",
    )


class MarketStats(PublicModel):
    days: list[MarketDay]


class LegacyAuction(BaseModel):
    """One row of the original Fragmenty ``/api/auctions`` answer, field names unchanged."""

    model_config = ConfigDict(
        populate_by_name=True,
        json_schema_extra={
            "examples": [
                {
                    "_id": "number:88800001234",
                    "id": "88800001234",
                    "auctionEndTimestamp": "2026-12-01T18:00:00Z",
                    "memorabilityScore": 0.5556,
                    "minimumBid": 1250,
                    "minimumBidInUSD": 4051,
                    "number": "+888 0000 1234",
                }
            ]
        },
    )

    mongo_id: str = Field(alias="_id", description="Document id (here '<asset>:<slug>').")
    id: str = Field(description="The number's digits.")
    auctionEndTimestamp: str | None = Field(
        description="Auction end (or sale time) in ISO 8601, UTC."
    )
    memorabilityScore: float = Field(description="0..1.")
    minimumBid: int = Field(description="Price in whole TON (rounded down).")
    minimumBidInUSD: int = Field(description="Price in whole USD (rounded down).")
    number: str = Field(description="The number as Fragment shows it.")


def trade_entries(details: dict[str, Any] | None, key: str) -> list[TradeEntry]:
    """The bid or ownership history stored with the listing, skipping malformed rows."""
    entries: list[TradeEntry] = []
    raw = (details or {}).get(key)
    if not isinstance(raw, list):
        return entries
    for item in raw[:5000]:
        if not isinstance(item, dict):
            continue
        try:
            entries.append(
                TradeEntry(
                    price_ton=item.get("price_ton"), at=item["at"], wallet=item.get("wallet")
                )
            )
        except (KeyError, ValueError):
            continue
    return entries


def event_types() -> list[str]:
    return [member.value for member in EventType]
