"""The item-page parser on pages as Fragment serves them: every state, and the history answers.

The fixtures keep the real irregularities: the price box's ``tbody`` has no ``tr``, history
dates come in a thin and a wide copy, wallets show a ``.ton`` name or the address in pieces,
and ownership history has ``Transferred`` rows without a price.
"""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from fragmenty_crawler.parsing.errors import ParseFailure
from fragmenty_crawler.parsing.item import (
    Amount,
    ItemState,
    parse_history_answer,
    parse_item_page,
)
from fragmenty_shared.contracts import Asset, HistoryEntry, HistoryKind, ListingStatus
from tests.unit.crawler.fixtures import fixture


def test_auction_page_reads_the_bid_box_countdown_and_bid_history() -> None:
    item = parse_item_page(fixture("item_number_auction.html"), "u")

    assert (item.asset, item.slug, item.title) == (Asset.NUMBER, "88800001234", "+888 0000 1234")
    assert item.status is ListingStatus.AUCTION
    assert item.highest_bid_ton == Decimal(34900)
    assert item.bid_step_ton == Decimal(1745)
    assert item.bid_step_pct == Decimal(5)
    assert item.min_bid_ton == item.price_ton == Decimal(36645)
    assert item.ends_at == datetime(2026, 4, 16, 5, 34, 55, tzinfo=UTC)
    assert item.bid_history == [
        HistoryEntry(
            price_ton=Decimal(34900),
            at=datetime(2026, 4, 12, 10, tzinfo=UTC),
            wallet="EQAbc123def456gNWTlJKlvs8qyYkum03Jo26dwhVl4xMeup",
            kind=HistoryKind.BID,
        ),
        HistoryEntry(
            price_ton=Decimal(33238),
            at=datetime(2026, 4, 11, 10, tzinfo=UTC),
            wallet="UQZz987Rj14mY6vAIyqBttYuGXpTCH5H9IFVs9wsM-7ixlFL",
            kind=HistoryKind.BID,
        ),
    ]
    assert item.more_bids_offset == "2"
    assert item.ownership_history == []
    assert item.more_owners_offset is None
    assert item.state_type == 3


def test_sale_page_reads_the_buy_now_price_and_owner() -> None:
    item = parse_item_page(fixture("item_username_sale.html"), "u")

    assert (item.asset, item.slug, item.status) == (Asset.USERNAME, "boris", ListingStatus.SALE)
    assert item.price_ton == Decimal("77.75")
    assert item.owner == "UQOwner000111222JoaAmbvF0XRvAmLystKMLBftwHstR_z8"
    assert item.min_bid_ton is None
    assert item.ownership_history[0].price_ton == Decimal(60)
    assert item.state_type == 1


def test_sold_page_reads_sale_price_owner_purchase_date_and_transfers() -> None:
    item = parse_item_page(fixture("item_number_sold.html"), "u")

    assert (item.slug, item.title, item.status) == ("8888080", "+888 8 080", ListingStatus.SOLD)
    assert item.price_ton == Decimal(130000)
    assert item.owner == "EQNewOwner777e_w2ZDN6Asw0w4BqEbrAIKp3EBQ-EzTVVcY"
    assert item.sold_at == datetime(2026, 3, 8, 16, 20, tzinfo=UTC)
    assert [entry.price_ton for entry in item.ownership_history] == [Decimal(130000), None]
    assert item.ownership_history[1].wallet == "EQOldOwner555yvCz1SMzc_F4Du_w00C1nhUAaaSTi7N5uWZ"
    assert item.more_owners_offset == "2"
    assert item.owner_name == "eightoeight.ton"
    assert item.price == Amount(Decimal(130000), Decimal(158257))
    assert [entry.kind for entry in item.ownership_history] == [
        HistoryKind.SALE,
        HistoryKind.TRANSFER,
    ]
    assert [entry.wallet_name for entry in item.ownership_history] == ["eightoeight.ton", None]


def test_history_answer_appends_entries_and_ends_without_a_cursor() -> None:
    part = parse_history_answer(fixture("history_more.json"), "u")

    assert [entry.price_ton for entry in part.entries] == [Decimal(31000), Decimal("29500.5")]
    assert part.entries[0].wallet == "EQBvW8Z5huBkMJYdnfAEM5JqTNkuWX3diqYENkWsIL0XggGG"
    assert part.next_offset is None


def test_an_item_page_whose_status_is_unknown_is_refused() -> None:
    page = fixture("item_number_sold.html").replace(">Sold</span>", ">Reserved</span>")
    with pytest.raises(ParseFailure) as caught:
        parse_item_page(page, "https://fragment.com/number/8888080")
    assert caught.value.reason == "unknown_status"


def test_an_auction_page_without_a_minimum_bid_is_refused() -> None:
    page = fixture("item_number_auction.html").replace("icon-ton", "icon-gem")
    with pytest.raises(ParseFailure) as caught:
        parse_item_page(page, "u")
    assert caught.value.reason == "missing_price"


def test_a_username_auction_whose_price_box_has_no_tr_gives_bid_step_and_minimum_with_usd() -> None:
    page = fixture("item_username_auction.html")
    assert "<tbody>\n          <td>" in page  # the cells sit in tbody directly, as served

    item = parse_item_page(page, "https://fragment.com/username/tonkeeper")

    assert (item.asset, item.slug, item.title) == (Asset.USERNAME, "tonkeeper", "@tonkeeper")
    assert item.state is ItemState.AUCTION
    assert item.highest_bid == Amount(Decimal(350), Decimal("538.77"))
    assert item.bid_step == Amount(Decimal("17.5"), None)
    assert item.bid_step_pct == Decimal(5)
    assert item.min_bid == item.price == Amount(Decimal("367.5"), Decimal("565.71"))
    # The countdown's children are animated digit reels: only the attribute is read.
    assert item.ends_at == datetime(2026, 4, 14, 19, 7, 41, tzinfo=UTC)
    assert item.more_bids_offset == "47916228000001"


def test_history_rows_read_thin_and_wide_times_once_and_keep_wallet_names_apart() -> None:
    item = parse_item_page(fixture("item_username_auction.html"), "u")

    first, second = item.bid_history
    assert first.at == datetime(2026, 4, 12, 21, 15, 3, tzinfo=UTC)
    assert (first.wallet, first.wallet_name) == (
        "UQDk3mwA1rKNS4Nv5l8dN1RcNg0vbVb7Y3xQ2Pz8tT4hYcsz",
        "kirill.ton",
    )
    # head/middle/tail pieces are the address cut up: the full address comes from the href.
    assert (second.wallet, second.wallet_name) == (
        "EQCj5mGbqBW9zv3cD7Ne1k0n0Y2Lq8cEJ4ueDp6a0ZYQ3nTf",
        None,
    )
    transfer, sale = item.ownership_history
    assert (transfer.price_ton, transfer.kind) == (None, HistoryKind.TRANSFER)
    assert (sale.price_ton, sale.kind, sale.wallet_name) == (
        Decimal(1010),
        HistoryKind.SALE,
        "durov.ton",
    )


def test_a_sale_page_keeps_its_usd_and_its_optional_expiry() -> None:
    item = parse_item_page(fixture("item_username_sale.html"), "u")

    assert item.price == Amount(Decimal("77.75"), Decimal("94.65"))
    assert item.ends_at == datetime(2026, 6, 30, tzinfo=UTC)
    assert item.sold_at is None


def test_an_available_username_has_a_minimum_bid_and_no_time() -> None:
    item = parse_item_page(fixture("item_username_available.html"), "u")

    assert (item.state, item.status) == (ItemState.AVAILABLE, None)
    assert item.min_bid == item.price == Amount(Decimal(10), Decimal("15.39"))
    assert (item.ends_at, item.sold_at, item.owner) == (None, None, None)


def test_a_taken_username_has_no_price() -> None:
    item = parse_item_page(fixture("item_username_taken.html"), "u")

    assert (item.state, item.status, item.price) == (ItemState.TAKEN, None, None)
    assert item.title == "@telegram"


def test_an_unavailable_item_has_no_price_like_its_listing_row() -> None:
    # Listing rows already accepted "Unavailable" (tm-status-unavail); its item page must too.
    page = fixture("item_username_taken.html").replace(
        '<span class="tm-section-header-status tm-status-taken">Taken</span>',
        '<span class="tm-section-header-status tm-status-unavail">Unavailable</span>',
    )
    assert "Unavailable" in page
    item = parse_item_page(page, "u")

    assert (item.state, item.status, item.price) == (ItemState.UNAVAILABLE, None, None)


def test_an_owners_history_answer_keeps_transfers_and_its_cursor() -> None:
    part = parse_history_answer(fixture("history_owners_more.json"), "u", HistoryKind.SALE)

    assert [(entry.price_ton, entry.kind) for entry in part.entries] == [
        (None, HistoryKind.TRANSFER),
        (Decimal(90000), HistoryKind.SALE),
    ]
    assert part.entries[0].wallet_name == "mariana.ton"
    assert part.next_offset == "4"


def test_a_history_answer_of_unknown_origin_takes_its_kind_from_the_cursor() -> None:
    part = parse_history_answer(fixture("history_owners_more.json"), "u")

    assert part.entries[1].kind is HistoryKind.SALE


def test_a_failure_names_the_page_the_shape_and_what_was_found() -> None:
    page = fixture("item_username_auction.html").replace("Minimum Bid", "Reserve")
    with pytest.raises(ParseFailure) as caught:
        parse_item_page(page, "https://fragment.com/username/tonkeeper")

    assert caught.value.reason == "missing_price"
    detail = caught.value.detail
    assert detail.startswith("https://fragment.com/username/tonkeeper: auction page without")
    assert "tbody td" in detail
    assert "'reserve'" in detail
