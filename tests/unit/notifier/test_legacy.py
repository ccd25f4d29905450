"""The original sockets' shapes and views, from stored listings and from events."""

import json
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from fragmenty_notifier.connection import ConnectionLimits
from fragmenty_notifier.envelope import Envelope
from fragmenty_notifier.frames import Frame
from fragmenty_notifier.legacy import LegacyConnection, LegacyView, change_frame, initial_frame
from fragmenty_notifier.metrics import create_metrics
from fragmenty_shared.contracts import Asset, EventType, ListingStatus

from .factories import make_event

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def listing(slug: str, status: str, ends_at: datetime | None, **extra: object) -> dict[str, object]:
    return {
        "_id": f"number:{slug}",
        "asset": "number",
        "slug": slug,
        "title": f"+{slug}",
        "status": status,
        "price_nanoton": 1_500_000_000_000,
        "price_usd_cents": 543_210,
        "ends_at": ends_at,
        "sold_at": None,
        "memorability": 0.75,
        **extra,
    }


LISTINGS = [
    listing("88800000001", "auction", NOW + timedelta(hours=2)),
    listing("88800000002", "auction", NOW + timedelta(hours=1)),
    listing("88800000003", "auction", NOW - timedelta(hours=1)),
    listing("88800000004", "sold", None, sold_at=NOW - timedelta(days=1)),
    listing("88800000005", "sale", NOW + timedelta(days=3)),
]


def slugs(frame: str) -> list[str]:
    return [auction["id"] for auction in json.loads(frame)]


def test_views_choose_and_order_like_the_original() -> None:
    assert slugs(initial_frame(LegacyView.FUTURE, LISTINGS, NOW)) == ["88800000002", "88800000001"]
    assert slugs(initial_frame(LegacyView.PAST, LISTINGS, NOW)) == ["88800000004", "88800000003"]
    assert slugs(initial_frame(LegacyView.AUCTIONS, LISTINGS, NOW)) == [
        "88800000001",
        "88800000002",
        "88800000003",
        "88800000004",
    ]


def test_an_auction_has_the_original_fields() -> None:
    (auction,) = json.loads(initial_frame(LegacyView.FUTURE, LISTINGS[:1], NOW))
    assert auction == {
        "_id": "number:88800000001",
        "id": "88800000001",
        "number": "+88800000001",
        "auctionEndTimestamp": "2026-11-27T14:00:00Z",
        "memorabilityScore": 0.75,
        "minimumBid": 1500,
        "minimumBidInUSD": "5432.1",
        "status": "auction",
    }


def test_changes_arrive_as_one_auction_and_leaving_the_view_says_removed() -> None:
    bid = make_event("88800000001", ends_at=NOW + timedelta(hours=1), price="1600.5")
    (auction,) = json.loads(change_frame(LegacyView.FUTURE, bid, NOW) or "")
    assert auction["minimumBid"] == "1600.5"
    assert auction["removed"] is False

    sold = make_event(
        "88800000001",
        type=EventType.SOLD,
        status=ListingStatus.SOLD,
        old_status=ListingStatus.AUCTION,
        ends_at=NOW + timedelta(hours=1),
    )
    (gone,) = json.loads(change_frame(LegacyView.FUTURE, sold, NOW) or "")
    assert gone["removed"] is True
    (arrived,) = json.loads(change_frame(LegacyView.PAST, sold, NOW) or "")
    assert arrived["removed"] is False


def test_events_outside_a_view_send_nothing() -> None:
    username = make_event("boris", asset=Asset.USERNAME, ends_at=NOW + timedelta(hours=1))
    assert change_frame(LegacyView.AUCTIONS, username, NOW) is None
    sale = make_event("88800000005", status=ListingStatus.SALE)
    assert change_frame(LegacyView.AUCTIONS, sale, NOW) is None


class CapturingOutbox:
    def __init__(self) -> None:
        self.sent: list[str] = []

    def offer(self, frame: Frame) -> bool:
        self.sent.append(frame.text)
        return True

    async def put(self, frame: Frame) -> None:
        self.sent.append(frame.text)


async def test_changes_during_the_list_read_come_after_the_list() -> None:
    connection = LegacyConnection(
        SimpleNamespace(scope={}),  # type: ignore[arg-type]
        "client",
        ConnectionLimits(1024, 1, 1, 1.0, 1),
        create_metrics(),
        LegacyView.FUTURE,
        clock=lambda: NOW,
    )
    outbox = CapturingOutbox()
    connection._outbox = outbox  # type: ignore[assignment]
    early = make_event("88800000001", ends_at=NOW + timedelta(hours=1), price="1700")
    connection.offer(Envelope.wrap(early))  # arrives while the list is being read
    assert outbox.sent == []
    await connection.send_current_list(LISTINGS)
    later = make_event("88800000002", ends_at=NOW + timedelta(hours=1), price="1800")
    connection.offer(Envelope.wrap(later))
    first, *changes = (json.loads(text) for text in outbox.sent)
    assert [a["id"] for a in first] == ["88800000002", "88800000001"]
    assert [change[0]["minimumBid"] for change in changes] == [1700, 1800]
