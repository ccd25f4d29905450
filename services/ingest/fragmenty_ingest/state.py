"""A listing's last known state: what ingest keeps in memory to tell changes from repeats.

The state is plain data. It mirrors the stored ``listings`` document (see
``fragmenty_shared.storage``), except for two things kept only in memory: ``observed_at`` (the
latest observation applied, which would cost a write per unchanged listing to persist) and a
digest of the item page details instead of the details themselves.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from fragmenty_shared.contracts import Asset, ListingObserved, ListingSnapshot, ListingStatus
from fragmenty_shared.memorability import assess_number
from fragmenty_shared.money import from_nanoton, to_nanoton, usd_cents
from fragmenty_shared.storage import listing_id

# How many of a listing's last prices its document keeps (the /listings sparklines): a fixed
# cap, so the listings collection stays bounded by the market however long a listing lives.
RECENT_PRICES = 20


@dataclass(frozen=True, slots=True)
class ListingState:
    asset: Asset
    slug: str
    title: str
    status: ListingStatus
    price_nanoton: int
    price_usd_cents: int | None
    ton_usd_rate: str
    ends_at: datetime | None
    sold_at: datetime | None
    url: str
    details_digest: str | None
    memorability: float | None
    tags: tuple[str, ...]
    first_seen_at: datetime
    changed_at: datetime
    observed_at: datetime
    delisted_at: datetime | None = None
    recent_prices: tuple[int, ...] = ()  # nanoTON, oldest first, the current price last

    @property
    def listing_id(self) -> str:
        return listing_id(self.asset, self.slug)

    def snapshot(self) -> ListingSnapshot:
        return ListingSnapshot(
            status=self.status,
            price_ton=from_nanoton(self.price_nanoton),
            price_usd=None if self.price_usd_cents is None else Decimal(self.price_usd_cents) / 100,
            ends_at=self.ends_at,
        )


def details_digest(details: dict[str, Any] | None) -> str | None:
    """A stable digest of item page details, so memory holds 32 bytes rather than bid histories."""
    if details is None:
        return None
    canonical = json.dumps(details, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.blake2b(canonical.encode(), digest_size=16).hexdigest()


def observed_details(observation: ListingObserved) -> dict[str, Any] | None:
    if observation.details is None:
        return None
    return observation.details.model_dump(mode="json")


def to_stored_time(moment: datetime) -> datetime:
    """``moment`` at the database's precision (BSON dates hold milliseconds).

    Memory and database must agree exactly, or a restart would see every listing as changed.
    """
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def optional_stored_time(moment: datetime | None) -> datetime | None:
    return None if moment is None else to_stored_time(moment)


def observed_usd_cents(observation: ListingObserved) -> int:
    """The USD price the page showed, or the TON price at the page's rate."""
    if observation.price_usd is not None:
        return int(observation.price_usd * 100)
    return usd_cents(observation.price_ton, observation.ton_usd_rate)


def state_from_observation(
    observation: ListingObserved,
    *,
    previous: ListingState | None,
) -> ListingState:
    """The state after applying ``observation`` as a change (the caller decided it is one)."""
    digest = details_digest(observed_details(observation))
    if digest is None and previous is not None:
        digest = previous.details_digest  # a row without details keeps the item page's
    if previous is None:
        assessment = assess_number(observation.slug) if observation.asset is Asset.NUMBER else None
        memorability = assessment.score if assessment else None
        tags = assessment.tags if assessment else ()
        first_seen_at = to_stored_time(observation.observed_at)
    else:
        memorability, tags, first_seen_at = (
            previous.memorability,
            previous.tags,
            previous.first_seen_at,
        )
    price_nanoton = to_nanoton(observation.price_ton)
    return ListingState(
        asset=observation.asset,
        slug=observation.slug,
        title=observation.title,
        status=observation.status,
        price_nanoton=price_nanoton,
        price_usd_cents=observed_usd_cents(observation),
        ton_usd_rate=str(observation.ton_usd_rate),
        ends_at=optional_stored_time(observation.ends_at),
        sold_at=optional_stored_time(observation.sold_at),
        url=observation.url,
        details_digest=digest,
        memorability=memorability,
        tags=tuple(tags),
        first_seen_at=first_seen_at,
        changed_at=to_stored_time(observation.observed_at),
        observed_at=to_stored_time(observation.observed_at),
        delisted_at=None,
        recent_prices=with_price(previous.recent_prices if previous else (), price_nanoton),
    )


def with_price(recent: tuple[int, ...], price_nanoton: int) -> tuple[int, ...]:
    """``recent`` with ``price_nanoton`` as its newest entry (a repeat adds nothing), capped."""
    if recent and recent[-1] == price_nanoton:
        return recent
    return (*recent, price_nanoton)[-RECENT_PRICES:]


def listing_document_fields(state: ListingState) -> dict[str, Any]:
    """The stored ``listings`` fields of a state, without ``_id`` and ``details``."""
    return {
        "asset": state.asset.value,
        "slug": state.slug,
        "title": state.title,
        "status": state.status.value,
        "url": state.url,
        "price_nanoton": state.price_nanoton,
        "price_usd_cents": state.price_usd_cents,
        "ton_usd_rate": state.ton_usd_rate,
        "ends_at": state.ends_at,
        "sold_at": state.sold_at,
        "memorability": state.memorability,
        "tags": list(state.tags),
        "first_seen_at": state.first_seen_at,
        "changed_at": state.changed_at,
        "delisted_at": state.delisted_at,
        "recent_prices": list(state.recent_prices),
    }


def state_from_document(document: dict[str, Any]) -> ListingState:
    """The state of a stored listing, as ingest warms its memory at start."""
    price_nanoton = int(document["price_nanoton"])
    # Documents written before recent_prices existed start their list at the current price.
    recent_prices = tuple(int(price) for price in document.get("recent_prices") or ())
    return ListingState(
        asset=Asset(document["asset"]),
        slug=document["slug"],
        title=document["title"],
        status=ListingStatus(document["status"]),
        price_nanoton=price_nanoton,
        price_usd_cents=document.get("price_usd_cents"),
        ton_usd_rate=str(document.get("ton_usd_rate", "0")),
        ends_at=document.get("ends_at"),
        sold_at=document.get("sold_at"),
        url=document.get("url", ""),
        details_digest=details_digest(document.get("details")),
        memorability=document.get("memorability"),
        tags=tuple(document.get("tags") or ()),
        first_seen_at=document["first_seen_at"],
        changed_at=document["changed_at"],
        # Unchanged observations are not persisted; the last change is the best lower bound.
        observed_at=max(
            document["changed_at"], document.get("delisted_at") or document["changed_at"]
        ),
        delisted_at=document.get("delisted_at"),
        recent_prices=recent_prices or (price_nanoton,),
    )
