"""The original Fragmenty sockets: ``/ws/auctions``, ``/ws/future-auctions``, ``/ws/past-auctions``.

The original (a Play app) sent a JSON array of the +888 number auctions, each ``{_id, id,
auctionEndTimestamp, memorabilityScore, minimumBid, minimumBidInUSD, number}``, and its page
redrew its chart from each message (``Plotly.newPlot(JSON.parse(event.data))``). So every message
here is the complete current list of the view, as the original's were: on connect, and again
when the view changed, at most once every ``FRAGMENTY_NOTIFIER_LEGACY_INTERVAL_S`` (the original
sent every five minutes). ``future`` holds the running auctions, soonest end first; ``past`` the
ended and sold ones, oldest first; ``auctions`` both, newest end first.

The lists come from memory shared by every connection of this process: the market is read from
the database once at start-up and then kept current by the events the notifier receives anyway;
each view's list is serialised and encoded once per change and the same bytes go to every client
of the view. A client that reads slowly simply gets the newest list when it has taken the last.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from fragmenty_notifier.connection import ClientConnection, ConnectionLimits
from fragmenty_notifier.envelope import Envelope
from fragmenty_notifier.frames import Frame
from fragmenty_notifier.metrics import NotifierMetrics
from fragmenty_shared.contracts import Asset, EventType, ListingSnapshot, ListingStatus, PriceEvent
from fragmenty_shared.money import from_nanoton
from fragmenty_shared.storage import listing_id

if TYPE_CHECKING:
    from starlette.websockets import WebSocket

    from fragmenty_notifier.event_store import EventStore

logger = logging.getLogger(__name__)

EPOCH = datetime.min.replace(tzinfo=UTC)
LOAD_RETRY_S = 2.0


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


@dataclass(frozen=True, slots=True)
class LegacyAuction:
    """One number in the market, with its item in the original's shape serialised once."""

    status: ListingStatus
    ends_at: datetime | None  # decides the view (running or ended)
    shown_end: datetime | None  # the item's auctionEndTimestamp: the end, or the sale
    item_json: str


def _end_shown(auction: LegacyAuction) -> datetime:
    return auction.shown_end or EPOCH


def _auction(
    *,
    slug: str,
    title: str,
    status: ListingStatus,
    ends_at: datetime | None,
    shown_end: datetime | None,
    memorability: float | None,
    price_ton: Decimal,
    price_usd: Decimal | None,
) -> LegacyAuction:
    item = {
        "_id": listing_id(Asset.NUMBER, slug),
        "id": slug,
        "number": title,
        "auctionEndTimestamp": _iso(shown_end),
        "memorabilityScore": memorability,
        "minimumBid": _amount(price_ton),
        "minimumBidInUSD": _amount(price_usd) if price_usd is not None else None,
    }
    return LegacyAuction(status, ends_at, shown_end, json.dumps(item))


def auction_from_listing(document: dict[str, Any]) -> LegacyAuction:
    """A stored listing (see ``fragmenty_shared.storage``) as the original's auction."""
    usd_cents = document.get("price_usd_cents")
    return _auction(
        slug=document["slug"],
        title=document["title"],
        status=ListingStatus(document["status"]),
        ends_at=document.get("ends_at"),
        shown_end=document.get("ends_at") or document.get("sold_at"),
        memorability=document.get("memorability"),
        price_ton=from_nanoton(int(document["price_nanoton"])),
        price_usd=Decimal(usd_cents) / 100 if usd_cents is not None else None,
    )


def auction_from_event(event: PriceEvent, snapshot: ListingSnapshot) -> LegacyAuction:
    return _auction(
        slug=event.slug,
        title=event.title,
        status=snapshot.status,
        ends_at=snapshot.ends_at,
        shown_end=snapshot.ends_at or event.occurred_at,
        memorability=event.memorability,
        price_ton=snapshot.price_ton,
        price_usd=snapshot.price_usd,
    )


class LegacyMarket:
    """The +888 numbers still on Fragment, one entry per listing (bounded by the market)."""

    def __init__(self) -> None:
        self._auctions: dict[str, LegacyAuction] = {}
        self.version = 0  # grows with every change

    def __len__(self) -> int:
        return len(self._auctions)

    def load(self, documents: list[dict[str, Any]]) -> None:
        self._auctions = {
            document["slug"]: auction_from_listing(document)
            for document in documents
            if document.get("asset") == Asset.NUMBER.value
        }
        self.version += 1

    def apply(self, event: PriceEvent) -> bool:
        """Take one event in; whether the market changed. An event carries the listing's whole
        new state, so applying one that the loaded market already reflects changes nothing."""
        if event.asset is not Asset.NUMBER:
            return False
        if event.type is EventType.DELISTED or event.new is None:
            changed = self._auctions.pop(event.slug, None) is not None
        else:
            auction = auction_from_event(event, event.new)
            changed = self._auctions.get(event.slug) != auction
            self._auctions[event.slug] = auction
        if changed:
            self.version += 1
        return changed

    def render(self, view: LegacyView, now: datetime) -> tuple[str, datetime | None]:
        """The view's complete list as the original sent it, and the next moment it changes by
        itself (a running auction's end), if any."""
        chosen = [a for a in self._auctions.values() if view.contains(a.status, a.ends_at, now)]
        chosen.sort(key=_end_shown, reverse=view is LegacyView.AUCTIONS)
        ends = [
            a.ends_at
            for a in self._auctions.values()
            if a.status is ListingStatus.AUCTION and a.ends_at is not None and a.ends_at > now
        ]
        return "[" + ", ".join([a.item_json for a in chosen]) + "]", min(ends, default=None)


@dataclass
class ViewList:
    """The list one view's clients get: the newest version, encoded once for all of them."""

    frame: Frame | None = None
    version: int = 0
    changes_at: datetime | None = None  # re-render then even without an event
    listeners: int = 0
    changed: asyncio.Event = field(default_factory=asyncio.Event)


class LegacyLists:
    """Every legacy view's current list, shared by all connections; one database read per
    process, at start-up (retried until it succeeds), then events keep the market current."""

    def __init__(
        self,
        store: EventStore,
        interval_s: float,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._store = store
        self._interval_s = interval_s
        self._clock = clock
        self.market = LegacyMarket()
        self._loaded = asyncio.Event()
        self._early: list[PriceEvent] = []  # events that arrived before the market was read
        self._views = {view: ViewList() for view in LegacyView}
        self._rendered_version = dict.fromkeys(LegacyView, -1)
        self._tasks: list[asyncio.Task[None]] = []
        self.database_reads = 0

    def start(self) -> None:
        """Read the market in the background (start-up never waits for the database)."""
        self._tasks = [
            asyncio.create_task(self._load_forever(), name="legacy-load"),
            asyncio.create_task(self._refresh_forever(), name="legacy-refresh"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def observe(self, envelopes: list[Envelope]) -> None:
        """Events fanned out by the hub: keep the market current (the lists follow on the next
        refresh)."""
        if not self._loaded.is_set():
            self._early.extend(envelope.event for envelope in envelopes)
            return
        for envelope in envelopes:
            self.market.apply(envelope.event)

    async def _load_forever(self) -> None:
        while True:
            try:
                self.database_reads += 1
                documents = await self._store.current_listings(Asset.NUMBER)
                break
            except Exception as error:
                logger.warning("reading the listings for the legacy sockets failed: %r", error)
                await asyncio.sleep(LOAD_RETRY_S)
        self.market.load(documents)
        # What arrived during the read is at least as new as what was read.
        early, self._early = self._early, []
        for event in early:
            self.market.apply(event)
        self._loaded.set()
        logger.info("legacy sockets: %d numbers in memory", len(self.market))

    async def _refresh_forever(self) -> None:
        await self._loaded.wait()
        while True:
            await asyncio.sleep(self._interval_s)
            self.refresh()

    def refresh(self) -> None:
        """Re-render the views someone listens to, if the market changed or time moved an
        auction between views; a list that came out the same is not sent again."""
        now = self._clock()
        for view, listed in self._views.items():
            if not listed.listeners:
                continue
            due = listed.changes_at is not None and listed.changes_at <= now
            if self._rendered_version[view] != self.market.version or due:
                self._render(view, listed, now)

    def _render(self, view: LegacyView, listed: ViewList, now: datetime) -> None:
        self._rendered_version[view] = self.market.version
        text, listed.changes_at = self.market.render(view, now)
        if listed.frame is not None and listed.frame.text == text:
            return
        listed.frame = Frame(text)
        listed.version += 1
        listed.changed.set()
        listed.changed = asyncio.Event()

    async def wait_loaded(self, timeout_s: float) -> None:
        await asyncio.wait_for(self._loaded.wait(), timeout_s)

    def listen(self, view: LegacyView) -> None:
        listed = self._views[view]
        listed.listeners += 1
        if listed.listeners == 1 and self._loaded.is_set():
            # Nobody kept this view current: render it now for its first client.
            self._render(view, listed, self._clock())

    def unlisten(self, view: LegacyView) -> None:
        self._views[view].listeners -= 1

    async def newer_than(self, view: LegacyView, version: int) -> tuple[int, Frame]:
        """The view's list once it is newer than ``version`` (at once, when it already is)."""
        listed = self._views[view]
        while listed.frame is None or listed.version <= version:
            if listed.frame is None and self._loaded.is_set():
                self._render(view, listed, self._clock())
                continue
            await listed.changed.wait()
        return listed.version, listed.frame


# How long a new client waits for the market to be read at start-up before it is told to retry.
LOAD_WAIT_S = 10.0


class LegacyConnection(ClientConnection):
    """Sends its view's list on connect and every newer list after it; reads nothing."""

    endpoint = "legacy"

    def __init__(
        self,
        websocket: WebSocket,
        client_host: str,
        limits: ConnectionLimits,
        metrics: NotifierMetrics,
        view: LegacyView,
    ) -> None:
        super().__init__(websocket, client_host, limits, metrics)
        self.view = view

    async def send_lists(self, lists: LegacyLists) -> bool:
        """Every newer list until the connection ends; False when the market never loaded.
        A list waits while the client is still taking the previous one, so a slow reader skips
        the lists that became stale meanwhile and is never cut off for it."""
        try:
            await lists.wait_loaded(LOAD_WAIT_S)
        except TimeoutError:
            return False
        lists.listen(self.view)
        try:
            version = 0
            while not self.closed:
                version, frame = await lists.newer_than(self.view, version)
                await self.send_waiting(frame)
        finally:
            lists.unlisten(self.view)
        return True
