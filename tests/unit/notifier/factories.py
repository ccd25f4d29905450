"""Price events for notifier tests, with ids that sort in creation order."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from fragmenty_shared.contracts import (
    Asset,
    EventType,
    ListingSnapshot,
    ListingStatus,
    PriceEvent,
    make_event_id,
)

_sequence = itertools.count()
_BASE = datetime.now(UTC).replace(microsecond=0)


def next_moment() -> datetime:
    """A fresh moment per call, so event ids differ and sort in the order they were made."""
    return _BASE + timedelta(milliseconds=next(_sequence))


def make_event(
    slug: str = "88800001234",
    *,
    asset: Asset = Asset.NUMBER,
    type: EventType = EventType.PRICE_CHANGED,
    price: str | None = "150",
    old_price: str | None = "100",
    status: ListingStatus = ListingStatus.AUCTION,
    old_status: ListingStatus | None = None,
    change_pct: float | None = None,
    memorability: float | None = None,
    tags: list[str] | None = None,
    occurred_at: datetime | None = None,
    ends_at: datetime | None = None,
) -> PriceEvent:
    moment = occurred_at or next_moment()
    title = f"+{slug}" if asset is Asset.NUMBER else f"@{slug}"
    old = (
        ListingSnapshot(status=old_status or status, price_ton=Decimal(old_price), ends_at=ends_at)
        if old_price is not None
        else None
    )
    new = (
        ListingSnapshot(status=status, price_ton=Decimal(price), ends_at=ends_at)
        if price is not None
        else None
    )
    return PriceEvent(
        event_id=make_event_id(asset, slug, type, moment),
        type=type,
        asset=asset,
        slug=slug,
        title=title,
        occurred_at=moment,
        old=old,
        new=new,
        change_pct=change_pct,
        memorability=memorability,
        tags=tags or [],
    )
