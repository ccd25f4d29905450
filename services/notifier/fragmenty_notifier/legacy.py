"""The original Fragmenty sockets: ``/ws/auctions``, ``/ws/future-auctions``, ``/ws/past-auctions``.

The original (a Play app) sent, every five minutes, a JSON array of the +888 number auctions in
its ``numbers`` collection, each ``{_id, id, auctionEndTimestamp, memorabilityScore, minimumBid,
minimumBidInUSD, number}``; ``future`` held auctions ending after now, ``past`` those that had
ended. Here the same array comes once, on connect, and afterwards each change arrives as it
happens: an array with the one changed auction, in the same shape plus ``status`` and
``removed`` (true when the auction left the view: sold, delisted, or, for ``future``, ended).
Clients of the original that replace their list on every message should merge by ``_id``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Hashable
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from fragmenty_notifier.connection import (
    CLOSE_TRY_AGAIN_LATER,
    ClientConnection,
    ConnectionLimits,
)
from fragmenty_notifier.envelope import Envelope
from fragmenty_notifier.frames import Frame
from fragmenty_notifier.metrics import NotifierMetrics
from fragmenty_shared.contracts import Asset, EventType, ListingSnapshot, ListingStatus, PriceEvent
from fragmenty_shared.money import from_nanoton
from fragmenty_shared.storage import listing_id

if TYPE_CHECKING:
    from starlette.websockets import WebSocket


class LegacyView(StrEnum):
    AUCTIONS = "auctions"
    FUTURE = "future-auctions"
    PAST = "past-auctions"

    def contains(self, status: ListingStatus, ends_at: datetime | None, now: datetime) -> bool:
        ended = status is ListingStatus.SOLD or (
            status is ListingStatus.AUCTION and ends_at is not None and ends_at <= now
        )
        running = status is ListingStatus.AUCTION and not ended
        if self is LegacyView.FUTURE:
            return running
        if self is LegacyView.PAST:
            return ended
        return running or ended


def _amount(value: Decimal) -> int | str:
    """The original sent whole TON and USD as integers; keep those, and stay exact otherwise."""
    return int(value) if value == value.to_integral_value() else str(value)


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z") if moment else None


def auction_from_listing(document: dict[str, Any]) -> dict[str, Any]:
    """A stored listing in the original's auction shape."""
    usd_cents = document.get("price_usd_cents")
    ends = document.get("ends_at") or document.get("sold_at")
    return {
        "_id": document["_id"],
        "id": document["slug"],
        "number": document["title"],
        "auctionEndTimestamp": _iso(ends),
        "memorabilityScore": document.get("memorability"),
        "minimumBid": _amount(from_nanoton(int(document["price_nanoton"]))),
        "minimumBidInUSD": _amount(Decimal(usd_cents) / 100) if usd_cents is not None else None,
        "status": document["status"],
    }


def auction_from_event(event: PriceEvent, snapshot: ListingSnapshot) -> dict[str, Any]:
    return {
        "_id": listing_id(event.asset, event.slug),
        "id": event.slug,
        "number": event.title,
        "auctionEndTimestamp": _iso(snapshot.ends_at or event.occurred_at),
        "memorabilityScore": event.memorability,
        "minimumBid": _amount(snapshot.price_ton),
        "minimumBidInUSD": _amount(snapshot.price_usd) if snapshot.price_usd is not None else None,
        "status": snapshot.status.value,
    }


def initial_frame(view: LegacyView, listings: list[dict[str, Any]], now: datetime) -> str:
    """The list the original sent: all views newest end first; future and past oldest first."""
    chosen = [
        document
        for document in listings
        if view.contains(ListingStatus(document["status"]), document.get("ends_at"), now)
    ]
    epoch = datetime.min.replace(tzinfo=UTC)

    def end_of(document: dict[str, Any]) -> datetime:
        moment = document.get("ends_at") or document.get("sold_at")
        return moment if isinstance(moment, datetime) else epoch

    chosen.sort(key=end_of, reverse=view is LegacyView.AUCTIONS)
    return json.dumps([auction_from_listing(document) for document in chosen])


def change_frame(view: LegacyView, event: PriceEvent, now: datetime) -> str | None:
    """The frame for one event on one view, or None when the event does not touch the view."""
    if event.asset is not Asset.NUMBER:
        return None
    before = event.old is not None and view.contains(event.old.status, event.old.ends_at, now)
    after = (
        event.type is not EventType.DELISTED
        and event.new is not None
        and view.contains(event.new.status, event.new.ends_at, now)
    )
    snapshot = event.new or event.old
    if not (before or after) or snapshot is None:
        return None
    auction = auction_from_event(event, snapshot)
    auction["removed"] = not after
    return json.dumps([auction])


# Changes that may arrive while the current list is read from the database; more means the
# database is far too slow for this client to get a consistent start.
MAX_HELD_CHANGES = 1000


class LegacyConnection(ClientConnection):
    """Changes are held back until the current list is out, so the list always comes first."""

    endpoint = "legacy"

    def __init__(
        self,
        websocket: WebSocket,
        client_host: str,
        limits: ConnectionLimits,
        metrics: NotifierMetrics,
        view: LegacyView,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        super().__init__(websocket, client_host, limits, metrics)
        self.view = view
        self._clock = clock
        self._held: list[Envelope] | None = []

    def frame_for(self, envelope: Envelope) -> Frame | None:
        text = change_frame(self.view, envelope.event, self._clock())
        return None if text is None else Frame(text, envelope)

    def offer(self, envelope: Envelope) -> None:
        if self._held is None:
            super().offer(envelope)
        elif len(self._held) < MAX_HELD_CHANGES:
            self._held.append(envelope)
        else:
            self.drop(CLOSE_TRY_AGAIN_LATER, "too slow: changes piled up", reason="slow")

    def frames_key(self) -> Hashable | None:
        # Changes are held back (not shared) until the current list is out.
        return ("legacy", self.view) if self._held is None else None

    def offer_batch(self, envelopes: list[Envelope]) -> None:
        if self._held is None:
            super().offer_batch(envelopes)
        else:
            for envelope in envelopes:
                self.offer(envelope)

    async def send_current_list(self, listings: list[dict[str, Any]]) -> None:
        """The list as of now, then the changes held back meanwhile (re-sending is harmless:
        clients merge by ``_id``)."""
        await self.send_waiting(Frame(initial_frame(self.view, listings, self._clock())))
        held, self._held = self._held or [], None
        for envelope in held:
            super().offer(envelope)
