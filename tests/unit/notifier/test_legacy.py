"""The original sockets' lists: views, the item shape, the market kept current by events, and one
database read shared by every connection."""

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from fragmenty_notifier.envelope import Envelope
from fragmenty_notifier.legacy import LegacyLists, LegacyMarket, LegacyView
from fragmenty_shared.contracts import Asset, EventType, ListingStatus

from .factories import make_event

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def listing(slug: str, status: str, ends_at: datetime | None, **extra: object) -> dict[str, Any]:
    return {
        "_id": f"number:{slug}",
        "asset": "number",
        "slug": slug,
        "title": f"+888 {slug[3:7]} {slug[7:]}",
        "status": status,
        "price_nanoton": 1_500_000_000_000,
        "price_usd_cents": 543_210,
        "ends_at": ends_at,
        "sold_at": None,
        "memorability": 0.75,
        "delisted_at": None,
        **extra,
    }


LISTINGS = [
    listing("88800000001", "auction", NOW + timedelta(hours=2)),
    listing("88800000002", "auction", NOW + timedelta(hours=1)),
    listing("88800000003", "auction", NOW - timedelta(hours=1)),
    listing("88800000004", "sold", None, sold_at=NOW - timedelta(days=1)),
    listing("88800000005", "sale", NOW + timedelta(days=3)),
]


def market_of(listings: list[dict[str, Any]]) -> LegacyMarket:
    market = LegacyMarket()
    market.load(listings)
    return market


def slugs(market: LegacyMarket, view: LegacyView, now: datetime = NOW) -> list[str]:
    text, _ = market.render(view, now)
    return [auction["id"] for auction in json.loads(text)]


def test_views_choose_and_order_like_the_original() -> None:
    market = market_of(LISTINGS)
    assert slugs(market, LegacyView.FUTURE) == ["88800000002", "88800000001"]
    assert slugs(market, LegacyView.PAST) == ["88800000004", "88800000003"]
    assert slugs(market, LegacyView.AUCTIONS) == [
        "88800000001",
        "88800000002",
        "88800000003",
        "88800000004",
    ]


def test_an_auction_has_exactly_the_original_fields() -> None:
    text, next_change = market_of(LISTINGS[:1]).render(LegacyView.FUTURE, NOW)
    assert json.loads(text) == [
        {
            "_id": "number:88800000001",
            "id": "88800000001",
            "number": "+888 0000 0001",
            "auctionEndTimestamp": "2026-11-27T14:00:00Z",
            "memorabilityScore": 0.75,
            "minimumBid": 1500,
            "minimumBidInUSD": "5432.1",
        }
    ]
    assert next_change == NOW + timedelta(hours=2)  # when it moves from future to past


def test_events_keep_the_market_current() -> None:
    market = market_of(LISTINGS)
    bid = make_event("88800000002", ends_at=NOW + timedelta(hours=1), price="1600.5")
    assert market.apply(bid)
    assert not market.apply(bid)  # the same state again changes nothing
    (changed,) = [
        a for a in json.loads(market.render(LegacyView.FUTURE, NOW)[0]) if a["id"] == bid.slug
    ]
    assert changed["minimumBid"] == "1600.5"

    sold = make_event(
        "88800000001",
        type=EventType.SOLD,
        status=ListingStatus.SOLD,
        old_status=ListingStatus.AUCTION,
        ends_at=NOW + timedelta(hours=2),
    )
    listed = make_event(
        "88800000009", type=EventType.LISTED, old_price=None, ends_at=NOW + timedelta(minutes=5)
    )
    delisted = make_event("88800000003", type=EventType.DELISTED, price=None)
    for event in (sold, listed, delisted):
        assert market.apply(event)
    assert slugs(market, LegacyView.FUTURE) == ["88800000009", "88800000002"]
    assert slugs(market, LegacyView.PAST) == ["88800000004", "88800000001"]
    assert not market.apply(make_event("boris", asset=Asset.USERNAME))


class CountingStore:
    """The listings read, counted; the read waits until released, like a slow database."""

    def __init__(self, listings: list[dict[str, Any]]) -> None:
        self.listings = listings
        self.reads = 0
        self.release = asyncio.Event()

    async def current_listings(self, asset: Asset) -> list[dict[str, Any]]:
        self.reads += 1
        await self.release.wait()
        return self.listings


async def test_every_client_of_a_view_shares_one_read_and_one_encoded_list() -> None:
    store = CountingStore(LISTINGS)
    lists = LegacyLists(store, interval_s=3600, clock=lambda: NOW)  # type: ignore[arg-type]
    lists.start()
    try:
        early = make_event("88800000002", ends_at=NOW + timedelta(hours=1), price="1700")
        lists.observe([Envelope.wrap(early)])  # arrives while the market is being read
        waiting = [asyncio.create_task(lists.newer_than(LegacyView.FUTURE, 0)) for _ in range(30)]
        store.release.set()
        await lists.wait_loaded(5)
        lists.listen(LegacyView.FUTURE)
        results = await asyncio.gather(*waiting)
        assert store.reads == 1
        assert len({id(frame) for _, frame in results}) == 1  # one Frame, one encoding
        (version, frame) = results[0]
        auctions = json.loads(frame.text)
        assert [a["minimumBid"] for a in auctions] == [1700, 1500]  # the early event applied

        # Nothing changed: a refresh sends nothing new.
        lists.refresh()
        assert (await lists.newer_than(LegacyView.FUTURE, 0))[0] == version
        # A change: the next refresh makes a newer list.
        lists.observe(
            [
                Envelope.wrap(
                    make_event("88800000001", ends_at=NOW + timedelta(hours=2), price="2000")
                )
            ]
        )
        newer = asyncio.create_task(lists.newer_than(LegacyView.FUTURE, version))
        await asyncio.sleep(0)
        assert not newer.done()
        lists.refresh()
        newer_version, newer_frame = await asyncio.wait_for(newer, 1)
        assert newer_version == version + 1
        assert [a["minimumBid"] for a in json.loads(newer_frame.text)] == [1700, 2000]
    finally:
        await lists.stop()


async def test_an_auction_that_ends_moves_to_past_without_an_event() -> None:
    clock = [NOW]
    lists = LegacyLists(CountingStore(LISTINGS), interval_s=3600, clock=lambda: clock[0])  # type: ignore[arg-type]
    lists.market.load(LISTINGS)
    lists._loaded.set()
    lists.listen(LegacyView.PAST)
    version, _ = await lists.newer_than(LegacyView.PAST, 0)
    clock[0] = NOW + timedelta(hours=1, seconds=1)  # 88800000002 has ended
    lists.refresh()
    _, frame = await asyncio.wait_for(lists.newer_than(LegacyView.PAST, version), 1)
    assert [a["id"] for a in json.loads(frame.text)] == [
        "88800000004",
        "88800000003",
        "88800000002",
    ]
