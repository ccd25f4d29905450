"""Builds stored documents in the shapes ingest writes (fragmenty_shared.schema), with ingest's
own document builders: listings, the event log, listing histories, daily closes and rollups.

The api's tests and benchmark seed the real database with these, so they never depend on a
running ingest, and a test can state exactly what the market looks like.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from fragmenty_ingest.migrate import stored_documents, write_stored_documents
from fragmenty_ingest.rollups import RollupDelta, key_fields, rollup_key
from fragmenty_shared.contracts import (
    Asset,
    EventType,
    ListingSnapshot,
    ListingStatus,
    PriceEvent,
    make_event_id,
)
from fragmenty_shared.memorability import assess_number
from fragmenty_shared.money import to_nanoton, usd_cents
from fragmenty_shared.schema import FIRST_OBSERVED_ID, SEQ_COUNTER_ID
from fragmenty_shared.storage import Collections, event_to_document, listing_id

DEFAULT_RATE = Decimal("3.25")


def title_of(asset: Asset, slug: str) -> str:
    if asset is Asset.USERNAME:
        return f"@{slug}"
    if len(slug) == 7:
        return f"+888 {slug[3]} {slug[4:]}"
    return f"+888 {slug[3:7]} {slug[7:]}"


@dataclass
class SeedListing:
    """One listing and the changes that led to its current state (oldest first)."""

    asset: Asset
    slug: str
    status: ListingStatus
    price_ton: Decimal
    first_seen_at: datetime
    ends_at: datetime | None = None
    sold_at: datetime | None = None
    delisted_at: datetime | None = None
    rate: Decimal = DEFAULT_RATE
    title: str | None = None
    details: dict[str, Any] | None = None
    # Extra earlier states: (time, type, status, price); the listing's own state is added last.
    changes: list[tuple[datetime, EventType, ListingStatus, Decimal]] = field(default_factory=list)
    memorability_override: float | None = None
    tags_override: list[str] | None = None
    # A listing stored without any history (as if its events were never recorded): benchmarks.
    without_history: bool = False

    @property
    def id(self) -> str:
        return listing_id(self.asset, self.slug)

    def memorability(self) -> tuple[float | None, list[str]]:
        if self.memorability_override is not None:
            return self.memorability_override, self.tags_override or []
        assessed = assess_number(self.slug) if self.asset is Asset.NUMBER else None
        if assessed is None:
            return None, []
        return assessed.score, list(assessed.tags)

    def listing_document(self) -> dict[str, Any]:
        score, tags = self.memorability()
        last_change = self.changes[-1][0] if self.changes else self.first_seen_at
        return {
            "_id": self.id,
            "asset": self.asset.value,
            "slug": self.slug,
            "title": self.title or title_of(self.asset, self.slug),
            "status": self.status.value,
            "url": f"https://fragment.com/{self.asset.value}/{self.slug}",
            "price_nanoton": to_nanoton(self.price_ton),
            "price_usd_cents": usd_cents(self.price_ton, self.rate),
            "ton_usd_rate": str(self.rate),
            "ends_at": self.ends_at,
            "sold_at": self.sold_at,
            "memorability": score,
            "tags": tags,
            "first_seen_at": self.first_seen_at,
            "changed_at": max(last_change, self.sold_at or last_change),
            "delisted_at": self.delisted_at,
            "details": self.details,
        }

    def timeline(self) -> list[tuple[datetime, EventType, ListingStatus, Decimal]]:
        """Every change: the ``changes`` given, or a single ``listed`` at first sight."""
        if self.without_history:
            return []
        if self.changes:
            return list(self.changes)
        return [(self.first_seen_at, EventType.LISTED, self.status, self.price_ton)]

    def events(self) -> list[PriceEvent]:
        score, tags = self.memorability()
        events = []
        previous: ListingSnapshot | None = None
        for at, event_type, status, price in self.timeline():
            new = ListingSnapshot(
                status=status,
                price_ton=price,
                price_usd=Decimal(usd_cents(price, self.rate)) / 100,
                ends_at=self.ends_at if status is not ListingStatus.SOLD else None,
            )
            change = None
            if previous is not None and previous.price_ton:
                change = float((price - previous.price_ton) / previous.price_ton * 100)
            events.append(
                PriceEvent(
                    event_id=make_event_id(self.asset, self.slug, event_type, at),
                    type=event_type,
                    asset=self.asset,
                    slug=self.slug,
                    title=self.title or title_of(self.asset, self.slug),
                    occurred_at=at,
                    old=previous,
                    new=None if event_type is EventType.DELISTED else new,
                    change_pct=change if event_type is EventType.PRICE_CHANGED else None,
                    memorability=score,
                    tags=tags,
                )
            )
            previous = new
        return events

    def sold_at_of(self, event: PriceEvent) -> datetime | None:
        return self.sold_at if event.type is EventType.SOLD else None


async def seed_market(
    database: AsyncDatabase[dict[str, Any]],
    listings: Iterable[SeedListing],
    *,
    window_events: int = 2_000,
) -> list[PriceEvent]:
    """Store the listings and what ingest stores for their events; returns the events with
    their positions (recorded in time order)."""
    listings = list(listings)
    timed = sorted(
        ((event, listing) for listing in listings for event in listing.events()),
        key=lambda pair: (pair[0].occurred_at, pair[0].event_id),
    )
    documents = stored_documents(
        [event_to_document(event) for event, _ in timed], first_seq=1, window_events=window_events
    )
    await write_stored_documents(database, documents)
    deltas: dict[str, RollupDelta] = {}
    numbered = []
    for seq, (event, listing) in enumerate(timed, start=1):
        event = event.model_copy(update={"seq": seq})
        numbered.append(event)
        deltas.setdefault(rollup_key(event, listing.sold_at_of(event)), RollupDelta()).add(event)
    rollups = [
        {"_id": key, **key_fields(key), **delta.totals(), "applied_seq": delta.last_seq}
        for key, delta in deltas.items()
    ]
    listing_docs = [listing.listing_document() for listing in listings]
    for name, batch in ((Collections.LISTINGS, listing_docs), (Collections.DAILY_ROLLUPS, rollups)):
        for start in range(0, len(batch), 2000):
            await database[name].insert_many(batch[start : start + 2000])
    meta = [{"_id": SEQ_COUNTER_ID, "value": documents.last_seq}]
    if timed:
        meta.append({"_id": FIRST_OBSERVED_ID, "value": timed[0][0].occurred_at})
    await database[Collections.INGEST_META].insert_many(meta)
    return numbered
