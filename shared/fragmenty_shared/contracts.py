"""The messages that cross the broker, in one place.

``ListingsObserved`` (one message per fetched page) and ``CensusCompleted`` go from the crawler
to ingest on the listings exchange; ``PriceEvent`` goes from ingest to everyone on the events
exchange. Each carries a ``schema_version`` so a consumer can refuse what it does not
understand, and every field has a description, which FastStream turns into the AsyncAPI
document.

Observations, schema version 2: the crawler sends a page's rows as one ``ListingsObserved``
(what the page shares, crawl, asset, time and TON rate, said once; one ``ObservedRow`` per row).
Version 1 was one ``ListingObserved`` per row; ingest still accepts it (messages queued during
an upgrade), and :meth:`ListingsObserved.observations` turns a page back into that shape, which
is what ingest decides on.

TON amounts are exact decimals (JSON strings), never binary floats.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter

SCHEMA_VERSION: Literal[1] = 1
PAGE_SCHEMA_VERSION: Literal[2] = 2  # ListingsObserved: the observations of one page

# Rows of one ListingsObserved: a Fragment page holds at most a few hundred; the limit keeps a
# message well under ingest's size limit (a row is about 300 bytes without item page details).
MAX_PAGE_ROWS = 1000

# Fragment's most expensive sales are in the millions of TON; a billion is "absurd", not "rich".
MAX_PRICE_TON = Decimal(1_000_000_000)


class Asset(StrEnum):
    """What kind of collectible a listing is."""

    NUMBER = "number"
    USERNAME = "username"


class ListingStatus(StrEnum):
    """Where a listing stands in Fragment's market."""

    AUCTION = "auction"
    SALE = "sale"
    SOLD = "sold"


class EventType(StrEnum):
    """What changed about a listing."""

    LISTED = "listed"
    PRICE_CHANGED = "price_changed"
    STATUS_CHANGED = "status_changed"
    AUCTION_EXTENDED = "auction_extended"
    SOLD = "sold"
    DELISTED = "delisted"


def _as_utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)


UtcDatetime = Annotated[AwareDatetime, AfterValidator(_as_utc)]
"""A timezone-aware moment, normalised to UTC; naive datetimes are refused."""

TonAmount = Annotated[
    Decimal,
    Field(ge=0, le=MAX_PRICE_TON, decimal_places=9, allow_inf_nan=False),
]
"""An exact TON amount: non-negative, finite, at most nine decimals (one nanoTON)."""

UsdAmount = Annotated[
    Decimal,
    Field(ge=0, le=MAX_PRICE_TON * 1000, decimal_places=2, allow_inf_nan=False),
]

Slug = Annotated[
    str,
    Field(
        pattern=r"^[a-z0-9_]{1,32}$",
        description="The id in Fragment's URL: digits for numbers (88800001234), a name for usernames.",
    ),
]

CrawlId = Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:-]{1,64}$", description="One crawl's id.")]


class ContractModel(BaseModel):
    """Strict about shape: unknown fields are refused, and instances are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class HistoryKind(StrEnum):
    """What a history row records."""

    BID = "bid"
    SALE = "sale"
    TRANSFER = "transfer"  # an ownership change without a sale: the page says "Transferred"


class HistoryEntry(ContractModel):
    """One row of an item page's bid or ownership history."""

    price_ton: TonAmount | None = Field(
        description="Amount paid or bid; null for a plain transfer ('Transferred')."
    )
    at: UtcDatetime = Field(description="When the bid or sale happened.")
    wallet: str | None = Field(
        default=None, max_length=128, description="Bidder's or buyer's TON wallet address."
    )
    kind: HistoryKind | None = Field(
        default=None,
        description="bid (bid history), sale or transfer (ownership history); null when unknown.",
    )
    wallet_name: str | None = Field(
        default=None,
        max_length=128,
        description="The wallet's display name when the page shows one (a .ton name).",
    )


class ItemDetails(ContractModel):
    """What only the listing's own page shows; present when the crawler fetched that page."""

    highest_bid_ton: TonAmount | None = Field(default=None, description="Current highest bid.")
    bid_step_ton: TonAmount | None = Field(default=None, description="Minimum raise, in TON.")
    bid_step_pct: Decimal | None = Field(
        default=None, ge=0, le=1000, allow_inf_nan=False, description="Minimum raise, in percent."
    )
    min_bid_ton: TonAmount | None = Field(default=None, description="Minimum next bid.")
    ends_at: UtcDatetime | None = Field(default=None, description="Auction end shown on the page.")
    owner: str | None = Field(default=None, max_length=128, description="Owner's wallet address.")
    owner_name: str | None = Field(
        default=None, max_length=128, description="The owner wallet's display name (a .ton name)."
    )
    sold_at: UtcDatetime | None = Field(
        default=None, description="'Purchased on' of a sold item page."
    )
    bid_history: list[HistoryEntry] = Field(
        default_factory=list, max_length=5000, description="Bids, newest first."
    )
    ownership_history: list[HistoryEntry] = Field(
        default_factory=list, max_length=5000, description="Sales and transfers, newest first."
    )


class ListingRowFields(ContractModel):
    """What one row of a Fragment view says about one listing: the part both observation
    shapes share (``ListingObserved`` adds the crawl, asset, time and rate; a page's
    ``ObservedRow`` has those from its page)."""

    slug: Slug
    title: str = Field(
        min_length=1, max_length=64, description="As Fragment shows it: '+888 0000 1234', '@boris'."
    )
    status: ListingStatus
    price_ton: TonAmount = Field(
        description="Minimum next bid (auction), fixed price (sale) or sale price (sold)."
    )
    price_usd: UsdAmount | None = Field(
        default=None, description="USD price, when the page shows one."
    )
    ends_at: UtcDatetime | None = Field(
        default=None, description="Auction end or sale expiry; null for sold listings."
    )
    sold_at: UtcDatetime | None = Field(default=None, description="Sale date of a sold listing.")
    url: str = Field(min_length=1, max_length=512, description="The listing's page on Fragment.")
    details: ItemDetails | None = Field(
        default=None, description="Item page details, when the crawler fetched the item page."
    )


ROW_FIELDS: tuple[str, ...] = tuple(ListingRowFields.model_fields)

TonUsdRate = Annotated[
    Decimal,
    Field(
        gt=0, le=1_000_000, allow_inf_nan=False, description="USD per TON on the page (tonRate)."
    ),
]


class ListingObserved(ListingRowFields):
    """One listing as the crawler saw it in one row of one Fragment view (schema version 1)."""

    kind: Literal["listing_observed"] = "listing_observed"
    schema_version: Literal[1] = Field(default=SCHEMA_VERSION, description="Contract version.")
    crawl_id: CrawlId
    observed_at: UtcDatetime = Field(description="When the row was read (UTC).")
    asset: Asset
    ton_usd_rate: TonUsdRate


class ObservedRow(ListingRowFields):
    """One row of a page: a ``ListingObserved`` without what the whole page shares."""

    observed_at: UtcDatetime | None = Field(
        default=None,
        description="When this row was read, if not when the page was (null: the page's time).",
    )


class ListingsObserved(ContractModel):
    """The listings of one fetched page (schema version 2): one message per page, not per row.

    A census or head page carries its rows in page order; an item page carries the one listing
    it details (``details``, with the time its row was read). Ingest validates row by row: a bad
    row is dead-lettered on its own and the rest of the page is ingested.
    """

    kind: Literal["listings_observed"] = "listings_observed"
    schema_version: Literal[2] = Field(
        default=PAGE_SCHEMA_VERSION, description="Contract version (2: a page of rows)."
    )
    crawl_id: CrawlId
    asset: Asset = Field(description="What the page lists; also its routing key's first word.")
    observed_at: UtcDatetime = Field(description="When the page was read (UTC).")
    ton_usd_rate: TonUsdRate
    rows: list[ObservedRow] = Field(
        min_length=1, max_length=MAX_PAGE_ROWS, description="The page's listings, in page order."
    )

    def observations(self) -> list[ListingObserved]:
        """The rows as one-row observations (schema version 1), in page order.

        Built without validating again: every value was validated as part of this page.
        """
        return [
            ListingObserved.model_construct(
                kind="listing_observed",
                schema_version=SCHEMA_VERSION,
                crawl_id=self.crawl_id,
                asset=self.asset,
                ton_usd_rate=self.ton_usd_rate,
                observed_at=row.observed_at or self.observed_at,
                **{name: getattr(row, name) for name in ROW_FIELDS},
            )
            for row in self.rows
        ]


def pages_of(
    observations: Sequence[ListingObserved], *, max_rows: int = MAX_PAGE_ROWS
) -> list[ListingsObserved]:
    """Observations as few page messages as they allow, in order.

    A page holds consecutive observations of one crawl, asset and TON rate (a new page starts
    where one of them changes, and after ``max_rows`` rows). Its time is its first row's; a row
    read at another moment keeps its own ``observed_at``.
    """
    pages: list[ListingsObserved] = []
    rows: list[ObservedRow] = []
    head: ListingObserved | None = None

    def close() -> None:
        if head is not None and rows:
            pages.append(
                ListingsObserved(
                    crawl_id=head.crawl_id,
                    asset=head.asset,
                    observed_at=head.observed_at,
                    ton_usd_rate=head.ton_usd_rate,
                    rows=list(rows),
                )
            )
        rows.clear()

    for observation in observations:
        if head is None or len(rows) >= max_rows or not _same_page(head, observation):
            close()
            head = observation
        own_time = None if observation.observed_at == head.observed_at else observation.observed_at
        rows.append(
            ObservedRow.model_construct(  # every value was validated as part of the observation
                observed_at=own_time,
                **{name: getattr(observation, name) for name in ROW_FIELDS},
            )
        )
    close()
    return pages


def _same_page(first: ListingObserved, other: ListingObserved) -> bool:
    return (first.crawl_id, first.asset, first.ton_usd_rate) == (
        other.crawl_id,
        other.asset,
        other.ton_usd_rate,
    )


class CensusView(ContractModel):
    """What a crawl saw of one asset/status view."""

    asset: Asset
    status: ListingStatus
    rows: int = Field(ge=0, description="Rows parsed and published from this view.")
    pages: int = Field(ge=0, description="Pages fetched for this view.")
    complete: bool = Field(
        description="Every page was fetched and parsed without error; only then may ingest delist."
    )
    reason: str | None = Field(
        default=None, max_length=1000, description="Why the view is incomplete, if it is."
    )


class CensusCompleted(ContractModel):
    """Sent after a crawl's views: which views it covered and whether each was complete."""

    kind: Literal["census_completed"] = "census_completed"
    schema_version: Literal[1] = Field(default=SCHEMA_VERSION, description="Contract version.")
    crawl_id: CrawlId
    started_at: UtcDatetime
    completed_at: UtcDatetime
    views: list[CensusView] = Field(min_length=1, max_length=16)
    views_in_crawl: int | None = Field(
        default=None,
        ge=1,
        le=16,
        description=(
            "How many views the whole crawl covers, when the crawler reports each view in a "
            "message of its own as the view finishes; null when this message covers the whole "
            "crawl. Ingest judges missing listings only once it has every view's census: a "
            "listing that moved to a view crawled later must not look gone."
        ),
    )


ListingsMessage = Annotated[
    ListingsObserved | ListingObserved | CensusCompleted, Field(discriminator="kind")
]
"""Everything that travels on the listings exchange, told apart by ``kind``."""

listings_message_adapter: TypeAdapter[ListingsObserved | ListingObserved | CensusCompleted] = (
    TypeAdapter(ListingsMessage)
)

# The schema version each kind of listings message is at (what a consumer accepts of it).
LISTINGS_SCHEMA_VERSIONS: dict[str, int] = {
    "listings_observed": PAGE_SCHEMA_VERSION,
    "listing_observed": SCHEMA_VERSION,
    "census_completed": SCHEMA_VERSION,
}


def observations_in(
    message: ListingsObserved | ListingObserved | CensusCompleted,
) -> list[ListingObserved]:
    """The observations a listings message carries (none for a census), as one-row messages."""
    if isinstance(message, ListingsObserved):
        return message.observations()
    if isinstance(message, ListingObserved):
        return [message]
    return []


class ListingSnapshot(ContractModel):
    """The parts of a listing that events compare."""

    status: ListingStatus
    price_ton: TonAmount
    price_usd: UsdAmount | None = None
    ends_at: UtcDatetime | None = None


class EventValuation(ContractModel):
    """The listing's fair value when the event was made (docs/valuation.md)."""

    fair_value_ton: TonAmount = Field(description="Expected next sale price.")
    low_ton: TonAmount = Field(description="Bottom of the 80 % band.")
    high_ton: TonAmount = Field(description="Top of the 80 % band.")
    discount_pct: float = Field(
        ge=-1_000_000,
        le=100,
        allow_inf_nan=False,
        description="How far the event's price is under the fair value, in percent.",
    )
    confidence: float = Field(ge=0, le=1, description="0: the features alone .. 1.")


class PriceEvent(ContractModel):
    """Something changed about a listing. Published to ``fragmenty.events`` as ``<asset>.<type>``."""

    schema_version: Literal[1] = Field(default=SCHEMA_VERSION, description="Contract version.")
    event_id: str = Field(
        min_length=1,
        max_length=160,
        description="Deterministic (see make_event_id): a replay yields the same id, so "
        "consumers drop duplicates by it. Not a resume cursor: use `seq`.",
    )
    seq: int | None = Field(
        default=None,
        ge=1,
        description="Position in the event log, given when ingest stores the event: it only "
        "grows, in the order events were recorded. Resume after the last one seen "
        "(`since=<seq>`). Null only on an event not stored yet.",
    )
    type: EventType
    asset: Asset
    slug: Slug
    title: str = Field(min_length=1, max_length=64)
    occurred_at: UtcDatetime = Field(description="Observation time of the change.")
    old: ListingSnapshot | None = Field(default=None, description="State before; null if listed.")
    new: ListingSnapshot | None = Field(default=None, description="State after; null if delisted.")
    change_pct: float | None = Field(
        default=None, allow_inf_nan=False, description="Price change in percent, for price_changed."
    )
    memorability: float | None = Field(
        default=None, ge=0, le=1, description="Memorability score of a number (0..1)."
    )
    tags: list[str] = Field(default_factory=list, max_length=32, description="Pattern tags.")
    valuation: EventValuation | None = Field(
        default=None,
        description=(
            "Fair value against the event's new price, when the producer had a fitted model "
            "(an optional addition of schema version 1; null when unknown)."
        ),
    )

    @property
    def routing_key(self) -> str:
        return f"{self.asset.value}.{self.type.value}"


def make_event_id(asset: Asset, slug: str, event_type: EventType, occurred_at: datetime) -> str:
    """A deterministic event id that sorts by time: ``<UTC time>:<asset>:<slug>:<type>``.

    The same observation always yields the same id, so replays after a crash are recognisable
    duplicates; and because the id starts with the time, ``_id`` order is event order.
    """
    return f"{_event_time(occurred_at)}:{asset.value}:{slug}:{event_type.value}"


@functools.lru_cache(maxsize=1024)
def _event_time(occurred_at: datetime) -> str:
    # The rows of a page share one time: formatting it once per page, not per event, is
    # measurable in a first ingest.
    return occurred_at.astimezone(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
