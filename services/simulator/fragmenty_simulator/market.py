"""A deterministic synthetic Fragment market: listings, their histories, and how they change.

The same seed, size and epoch always give the same market. Tests read the market back
(``/_simulator/market``) and compare a crawl against it, so nothing here is random at render time.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from fragmenty_shared.contracts import Asset, ListingStatus
from fragmenty_simulator.hidden_value import scattered, true_value_ton

_SYLLABLES = (
    "ka", "ro", "mi", "ta", "lu", "ne", "so", "vi", "da", "ze", "po", "ri", "an", "el", "ox",
    "bo", "ris", "ton", "gram", "coin", "max", "nova", "pix", "sky", "zen", "art", "dev", "bit",
)  # fmt: skip
_WALLET_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
BID_STEP_PCT = Decimal(5)


@dataclass
class HistoryRecord:
    """A bid (bid history) or a sale/transfer (ownership history); price None = "Transferred"."""

    price_ton: Decimal | None
    at: datetime
    wallet: str


@dataclass
class SimListing:
    asset: Asset
    slug: str
    status: ListingStatus
    price_ton: Decimal  # minimum next bid (auction), fixed price (sale), sale price (sold)
    listed_at: datetime
    ends_at: datetime | None  # auction end or sale expiry
    sold_at: datetime | None
    owner: str
    resale: bool = False
    # What the listing is truly worth (the hidden market model; never on a page or in
    # /_simulator/market, so nothing that values listings can read it).
    value_ton: float = 0.0
    bids: list[HistoryRecord] = field(default_factory=list)  # newest first
    sales: list[HistoryRecord] = field(default_factory=list)  # newest first

    @property
    def title(self) -> str:
        if self.asset is Asset.USERNAME:
            return f"@{self.slug}"
        rest = self.slug[3:]
        if len(rest) == 4:  # 7-digit numbers: +888 8 080
            return f"+888 {rest[0]} {rest[1:]}"
        return f"+888 {rest[:4]} {rest[4:]}"

    @property
    def highest_bid_ton(self) -> Decimal | None:
        return self.bids[0].price_ton if self.bids else None


def usd_shown(price_ton: Decimal, rate: Decimal) -> Decimal:
    """USD as Fragment prints it: cents only for fractional amounts under $1,000."""
    exact = (price_ton * rate).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    if exact < 1000 and exact != exact.to_integral_value():
        return exact
    return exact.quantize(Decimal(1), rounding=ROUND_HALF_UP)


class Market:
    """Every listing, by asset and slug, plus the TON rate; mutated by ticks and control calls."""

    def __init__(self, listings: list[SimListing], ton_rate: Decimal, now: datetime) -> None:
        self.listings: dict[tuple[Asset, str], SimListing] = {
            (listing.asset, listing.slug): listing for listing in listings
        }
        self.ton_rate = ton_rate
        self.now = now
        self.version = 0  # bumped on every change, so renderers may cache per version

    @classmethod
    def generate(cls, size: int, seed: int, epoch: datetime | None = None) -> Market:
        """``size`` listings, about 60% numbers, spread over auction/sale/sold (each non-empty)."""
        rng = random.Random(seed)  # noqa: S311 - a reproducible market, not crypto
        now = (epoch or datetime.now(UTC)).replace(microsecond=0)
        rate = Decimal(rng.randint(100_000_000, 700_000_000)) / Decimal(100_000_000)
        factory = _ListingFactory(rng, now)
        listings: list[SimListing] = []
        statuses = (ListingStatus.AUCTION, ListingStatus.SALE, ListingStatus.SOLD)
        for index in range(size):
            if index < 6:  # the first six cover every asset/status view: no view is ever empty
                asset = Asset.NUMBER if index < 3 else Asset.USERNAME
                status = statuses[index % 3]
            else:
                asset = Asset.NUMBER if index % 5 < 3 else Asset.USERNAME
                status = rng.choice(statuses)
            listings.append(factory.make(asset, status))
        return cls(listings, rate, now)

    def get(self, asset: Asset, slug: str) -> SimListing | None:
        return self.listings.get((asset, slug))

    def touch(self) -> None:
        self.version += 1

    def view(self, asset: Asset, status_filter: str, query: str, sort: str) -> list[SimListing]:
        """The rows a listing page shows, in the page's order."""
        wanted = _FILTERS.get(status_filter, _FILTERS[""])
        needle = query.strip().lstrip("@+").replace(" ", "").lower()
        rows = [
            listing
            for listing in self.listings.values()
            if listing.asset is asset and listing.status in wanted and needle in listing.slug
        ]
        rows.sort(key=_SORT_KEYS.get(sort, _SORT_KEYS["price_desc"]))
        return rows

    def tick(self, rng: random.Random, moves: int = 10) -> None:
        """One step of market life: bids, finished auctions, new listings, withdrawals."""
        self.now += timedelta(minutes=1)
        factory = _ListingFactory(rng, self.now)
        for _ in range(moves):
            listing = rng.choice(list(self.listings.values()))
            roll = rng.random()
            if listing.status is ListingStatus.AUCTION and roll < 0.5:
                place_bid(listing, self.now, factory.wallet())
            elif listing.status is ListingStatus.AUCTION and roll < 0.65:
                end_auction(listing, self.now, factory.wallet())
            elif listing.status is ListingStatus.SALE and roll < 0.1:
                del self.listings[(listing.asset, listing.slug)]
            elif roll > 0.9:
                fresh = factory.make(listing.asset, ListingStatus.AUCTION)
                fresh.listed_at = self.now  # new on the market: first in "Recently listed"
                self.listings.setdefault((fresh.asset, fresh.slug), fresh)
        self.touch()

    def as_json(self, base_url: str) -> dict[str, Any]:
        """The whole market as a crawl should see it (``price_usd`` as browse views print it)."""
        return {
            "ton_rate": str(self.ton_rate),
            "listings": [
                listing_json(listing, self.ton_rate, base_url)
                for listing in sorted(self.listings.values(), key=lambda x: (x.asset, x.slug))
            ],
        }


def listing_json(listing: SimListing, rate: Decimal, base_url: str) -> dict[str, Any]:
    return {
        "asset": listing.asset.value,
        "slug": listing.slug,
        "title": listing.title,
        "status": listing.status.value,
        "price_ton": str(listing.price_ton),
        "price_usd": str(usd_shown(listing.price_ton, rate)),
        "ton_usd_rate": str(rate),
        "ends_at": listing.ends_at.isoformat() if listing.ends_at else None,
        "sold_at": listing.sold_at.isoformat() if listing.sold_at else None,
        "url": f"{base_url.rstrip('/')}/{listing.asset.value}/{listing.slug}",
        "resale": listing.resale,
        "highest_bid_ton": str(listing.highest_bid_ton) if listing.bids else None,
        "owner": listing.owner,
        "bids": len(listing.bids),
        "sales": len(listing.sales),
    }


def place_bid(listing: SimListing, now: datetime, wallet: str) -> None:
    """A bid at the minimum: the next minimum rises by the bid step."""
    listing.bids.insert(0, HistoryRecord(listing.price_ton, now, wallet))
    listing.price_ton = _round_price(listing.price_ton * (100 + BID_STEP_PCT) / 100)
    if listing.ends_at is not None and listing.ends_at - now < timedelta(hours=1):
        listing.ends_at = now + timedelta(hours=1)  # Fragment extends auctions bid late


def end_auction(listing: SimListing, now: datetime, wallet: str) -> None:
    """The auction closes: sold to the highest bidder (or at the minimum when nobody bid)."""
    price = listing.highest_bid_ton or listing.price_ton
    listing.status = ListingStatus.SOLD
    listing.price_ton = price
    listing.sold_at = now
    listing.ends_at = None
    listing.sales.insert(0, HistoryRecord(price, now, wallet))
    listing.owner = wallet


_FILTERS = {
    "auction": {ListingStatus.AUCTION},
    "sale": {ListingStatus.SALE},
    "sold": {ListingStatus.SOLD},
    "": {ListingStatus.AUCTION, ListingStatus.SALE},  # search mode: "available"
}
_FAR_FUTURE = datetime(9999, 1, 1, tzinfo=UTC)
# Where a new listing's price starts against its value (log scale): auctions open low (the
# minimum bid), fixed prices ask a little more than the value, a sale is a sale.
_ASKING_BIAS = {ListingStatus.AUCTION: -0.5, ListingStatus.SALE: 0.1, ListingStatus.SOLD: 0.0}
_SORT_KEYS: dict[str, Any] = {
    "price_desc": lambda x: (-x.price_ton, x.slug),
    "price": lambda x: (-x.price_ton, x.slug),
    "price_asc": lambda x: (x.price_ton, x.slug),
    # "Recently listed"; in the sold view that is the latest sales first.
    "listed": lambda x: (-(x.sold_at or x.listed_at).timestamp(), x.slug),
    "ending": lambda x: (x.ends_at or _FAR_FUTURE, x.slug),
}


def _round_price(amount: Decimal) -> Decimal:
    """Prices above 100 TON are whole; small ones keep up to two decimals (mini-frac)."""
    places = Decimal(1) if amount >= 100 else Decimal("0.01")
    rounded = amount.quantize(places, rounding=ROUND_HALF_UP)
    if rounded == rounded.to_integral_value():
        return rounded.quantize(Decimal(1))
    return rounded.normalize()


class _ListingFactory:
    """Makes plausible listings from one random stream; slugs never repeat within a factory."""

    def __init__(self, rng: random.Random, now: datetime) -> None:
        self.rng = rng
        self.now = now
        self.used: set[str] = set()

    def wallet(self) -> str:
        return "UQ" + "".join(self.rng.choice(_WALLET_ALPHABET) for _ in range(46))

    def make(self, asset: Asset, status: ListingStatus) -> SimListing:
        rng, now = self.rng, self.now
        slug = self._slug(asset)
        value = true_value_ton(asset, slug, rng)
        price = _round_price(scattered(value, rng, bias=_ASKING_BIAS[status]))
        listed_at = now - timedelta(minutes=rng.randint(10, 60 * 24 * 60))
        owner = self.wallet()
        listing = SimListing(asset, slug, status, price, listed_at, None, None, owner)
        listing.value_ton = value
        listing.sales = self._history(rng.randint(0, 4), listed_at, value, allow_transfer=True)
        if status is ListingStatus.AUCTION:
            listing.ends_at = now + timedelta(minutes=rng.randint(5, 60 * 24 * 7))
            listing.resale = bool(listing.sales) and rng.random() < 0.5
            bids = self._history(rng.randint(0, 12), listed_at, value, allow_transfer=False)
            if bids:
                top = _round_price(price * 100 / (100 + BID_STEP_PCT))
                for depth, bid in enumerate(bids):
                    bid.price_ton = _round_price(top * (100 - 3 * depth) / 100) or Decimal(1)
            listing.bids = bids
        elif status is ListingStatus.SALE:
            has_expiry = rng.random() < 0.7
            listing.ends_at = now + timedelta(days=rng.randint(1, 90)) if has_expiry else None
        else:
            listing.sold_at = now - timedelta(minutes=rng.randint(1, 60 * 24 * 300))
            listing.sales.insert(0, HistoryRecord(price, listing.sold_at, owner))
        return listing

    def _slug(self, asset: Asset) -> str:
        while True:
            if asset is Asset.NUMBER:
                # Seven-digit numbers exist only as 8888xxx (shown "+888 8 xxx"); the rest are
                # 888 and eight digits.
                short = self.rng.random() < 0.08
                prefix, free_digits = ("8888", 3) if short else ("888", 8)
                slug = prefix + "".join(self.rng.choice("0123456789") for _ in range(free_digits))
            else:
                parts = [self.rng.choice(_SYLLABLES) for _ in range(self.rng.randint(2, 4))]
                slug = "".join(parts)
                if self.rng.random() < 0.2:
                    slug += str(self.rng.randint(1, 99))
                if self.rng.random() < 0.1:
                    slug = slug[:3] + "_" + slug[3:]
                slug = slug[:32]
            if len(slug) >= 4 and slug not in self.used:
                self.used.add(slug)
                return slug

    def _history(
        self, count: int, before: datetime, value_ton: float, *, allow_transfer: bool
    ) -> list[HistoryRecord]:
        records: list[HistoryRecord] = []
        at = before
        for _ in range(count):
            at -= timedelta(minutes=self.rng.randint(5, 60 * 24 * 30))
            price: Decimal | None = _round_price(scattered(value_ton, self.rng))
            if allow_transfer and self.rng.random() < 0.2:
                price = None
            records.append(HistoryRecord(price, at, self.wallet()))
        return records
