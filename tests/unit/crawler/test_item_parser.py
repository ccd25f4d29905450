"""The item-page parser: auction, sale and sold pages, and history "Show more" answers."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from fragmenty_crawler.parsing.errors import ParseFailure
from fragmenty_crawler.parsing.item import parse_history_answer, parse_item_page
from fragmenty_shared.contracts import Asset, HistoryEntry, ListingStatus
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
            wallet="EQAbc123def456",
        ),
        HistoryEntry(
            price_ton=Decimal(33238), at=datetime(2026, 4, 11, 10, tzinfo=UTC), wallet="UQZz987"
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
    assert item.owner == "UQOwner000111222"
    assert item.min_bid_ton is None
    assert item.ownership_history[0].price_ton == Decimal(60)
    assert item.state_type == 1


def test_sold_page_reads_sale_price_owner_purchase_date_and_transfers() -> None:
    item = parse_item_page(fixture("item_number_sold.html"), "u")

    assert (item.slug, item.title, item.status) == ("8888080", "+888 8 080", ListingStatus.SOLD)
    assert item.price_ton == Decimal(130000)
    assert item.owner == "EQNewOwner777"
    assert item.sold_at == datetime(2026, 3, 8, 16, 20, tzinfo=UTC)
    assert [entry.price_ton for entry in item.ownership_history] == [Decimal(130000), None]
    assert item.ownership_history[1].wallet == "EQOldOwner555"
    assert item.more_owners_offset == "2"


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
