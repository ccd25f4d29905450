"""The listing-table parser on pages written from the markup description: every row shape."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from fragmenty_crawler.parsing.errors import ParseFailure
from fragmenty_crawler.parsing.listing import ListingRow, parse_listing_page, parse_search_answer
from fragmenty_shared.contracts import Asset, ListingStatus
from tests.unit.crawler.fixtures import BASE, fixture

AUCTION, SALE, SOLD = ListingStatus.AUCTION, ListingStatus.SALE, ListingStatus.SOLD


def _by_slug(rows: list[ListingRow]) -> dict[str, ListingRow]:
    return {row.slug: row for row in rows}


def test_browse_auction_view_reads_11_and_7_digit_numbers_resale_and_fractions() -> None:
    page = parse_listing_page(fixture("numbers_auction.html"), "u", BASE, AUCTION)

    assert page.failures == []
    assert page.init is not None
    assert page.init.api_hash == "f39dfed766153ec875"
    assert page.init.ton_usd_rate == Decimal("1.21735963")
    assert page.next_offset == "NTAw"
    rows = _by_slug(page.rows)
    assert list(rows) == ["88800001234", "8888080", "88812345678"]
    eleven = rows["88800001234"]
    assert eleven == ListingRow(
        asset=Asset.NUMBER,
        slug="88800001234",
        title="+888 0000 1234",
        status=AUCTION,
        price_ton=Decimal(36645),
        price_usd=Decimal(44610),
        ends_at=datetime(2026, 4, 16, 5, 34, 55, tzinfo=UTC),
        sold_at=None,
        url="https://fragment.com/number/88800001234",
    )
    seven = rows["8888080"]
    assert (seven.title, seven.status, seven.price_ton) == ("+888 8 080", AUCTION, Decimal(130000))
    # "Resale" marks a resale auction; the +02:00 end time is normalised to UTC.
    assert seven.ends_at == datetime(2026, 4, 17, 10, 0, tzinfo=UTC)
    fractional = rows["88812345678"]
    assert fractional.price_ton == Decimal("30.25")
    assert fractional.price_usd == Decimal("36.83")


def test_browse_sale_view_with_and_without_expiry() -> None:
    page = parse_listing_page(fixture("numbers_sale.html"), "u", BASE, SALE)

    rows = _by_slug(page.rows)
    assert page.next_offset is None
    assert rows["88804040404"].ends_at == datetime(2026, 5, 1, tzinfo=UTC)
    assert rows["88804040404"].price_usd == Decimal(1522)
    no_expiry = rows["88899887766"]
    assert (no_expiry.status, no_expiry.ends_at, no_expiry.price_ton) == (SALE, None, Decimal(9))
    assert no_expiry.price_usd == Decimal("10.96")


def test_browse_sold_view_reads_sale_dates_not_end_times() -> None:
    page = parse_listing_page(fixture("numbers_sold.html"), "u", BASE, SOLD)

    rows = _by_slug(page.rows)
    big = rows["88800000000"]
    assert (big.status, big.price_ton, big.ends_at) == (SOLD, Decimal(1_000_000), None)
    assert big.sold_at == datetime(2025, 12, 24, 18, 3, 11, tzinfo=UTC)
    short = rows["8888111"]
    assert short.title == "+888 8 111"
    assert short.price_ton == Decimal("4.5")
    assert short.sold_at == datetime(2026, 1, 2, 8, 4, 5, tzinfo=UTC)
    assert page.init is not None
    assert page.init.ton_usd_rate == Decimal("1.2173596")


def test_search_view_takes_status_from_the_row_and_has_no_usd() -> None:
    page = parse_listing_page(fixture("usernames_search.html"), "u", BASE, None)

    rows = _by_slug(page.rows)
    assert rows["boris"].status is AUCTION
    assert rows["boris"].title == "@boris"
    assert rows["boris"].price_usd is None  # the cell says "Minimum bid"
    assert rows["bob_ton"].status is SALE
    assert rows["bob_ton"].price_ton == Decimal("77.75")
    assert rows["bob_ton"].url == "https://fragment.com/username/bob_ton"
    assert page.next_offset == "MjAw"


def test_search_answer_with_the_whole_section() -> None:
    outcome = parse_search_answer(fixture("search_first.json"), "u", BASE, SOLD)

    assert [(row.slug, row.status, row.price_ton) for row in outcome.rows] == [
        ("ton", SOLD, Decimal(2_000_000))
    ]
    assert outcome.next_offset == "MQ"


def test_search_answer_parts_carry_rows_and_the_next_cursor() -> None:
    part = parse_search_answer(fixture("search_part.json"), "u", BASE, AUCTION)
    last = parse_search_answer(fixture("search_last_part.json"), "u", BASE, AUCTION)

    assert [(row.slug, row.price_ton) for row in part.rows] == [
        ("crypto", Decimal("12.5")),
        ("wallet", Decimal(250000)),
    ]
    assert part.next_offset == "MTAwMA"
    assert [row.slug for row in last.rows] == ["cryptobot"]
    assert last.next_offset is None


def test_a_truncated_page_is_refused_whole() -> None:
    page = fixture("numbers_auction.html")
    with pytest.raises(ParseFailure) as caught:
        parse_listing_page(page[: len(page) // 2], "u", BASE, AUCTION)
    assert caught.value.reason == "truncated"


def test_a_page_without_the_results_table_is_a_failure_not_an_empty_market() -> None:
    with pytest.raises(ParseFailure) as caught:
        parse_listing_page(fixture("no_table.html"), "https://x/numbers", BASE, AUCTION)
    assert caught.value.reason == "no_results_table"
    assert "https://x/numbers" in caught.value.detail


def test_a_page_without_ajinit_is_refused() -> None:
    page = fixture("numbers_sale.html").replace("ajInit(", "init(")
    with pytest.raises(ParseFailure) as caught:
        parse_listing_page(page, "u", BASE, SALE)
    assert caught.value.reason == "no_ajinit"


def test_changed_price_markup_makes_every_row_a_failure_and_none_a_record() -> None:
    page = fixture("numbers_auction.html").replace("icon-ton", "icon-gem")

    outcome = parse_listing_page(page, "u", BASE, AUCTION)

    assert outcome.rows == []
    assert [failure.reason for failure in outcome.failures] == ["missing_price"] * 3


def test_a_row_missing_its_end_time_is_not_a_record() -> None:
    page = fixture("numbers_sale.html").replace(
        '<div class="table-cell-value tm-value tm-status-avail">For sale</div>',
        '<div class="table-cell-value tm-value tm-status-avail">On auction</div>',
    )

    outcome = parse_listing_page(page, "u", BASE, SALE)

    assert [row.slug for row in outcome.rows] == ["88804040404"]
    assert [failure.reason for failure in outcome.failures] == ["missing_time"]


def test_an_unknown_status_word_is_a_failure() -> None:
    page = fixture("numbers_sold.html").replace(
        ">Sold</div>\n          <div class", ">Unavailable</div>\n          <div class", 1
    )

    outcome = parse_listing_page(page, "u", BASE, SOLD)

    assert [failure.reason for failure in outcome.failures] == ["unknown_status"]
    assert len(outcome.rows) == 1


def test_api_errors_and_broken_json_are_failures() -> None:
    with pytest.raises(ParseFailure) as error:
        parse_search_answer('{"error":"Access denied"}', "u", BASE, SALE)
    with pytest.raises(ParseFailure) as broken:
        parse_search_answer('{"ok":true,"part":true,"body":"<tr', "u", BASE, SALE)
    assert (error.value.reason, broken.value.reason) == ("api_error", "bad_json")


def test_an_empty_part_that_points_further_is_a_failure() -> None:
    answer = '{"ok":true,"part":true,"body":"","foot":"<div class=\\"js-load-more\\" data-next-offset=\\"x\\"></div>"}'
    with pytest.raises(ParseFailure) as caught:
        parse_search_answer(answer, "u", BASE, SALE)
    assert caught.value.reason == "empty_page"


def test_search_view_resale_rows_are_auctions_and_off_market_rows_are_kept_apart() -> None:
    page = parse_listing_page(fixture("usernames_search.html"), "u", BASE, None)

    rows = _by_slug(page.rows)
    assert rows["borisov"].status is AUCTION  # "Resale" in a search view
    assert rows["borisov"].ends_at == datetime(2026, 4, 15, 12, 30, tzinfo=UTC)
    assert page.failures == []
    assert [(row.slug, row.state, row.price_ton) for row in page.off_market] == [
        ("bori", "taken", None),  # the price cell says "Unknown"
        ("borisbot", "available", Decimal(10)),  # a minimum bid and no time
        ("borya", "unavailable", None),
    ]


def test_search_view_of_numbers_reads_short_numbers_sale_expiry_resale_and_sales() -> None:
    page = parse_listing_page(fixture("numbers_search.html"), "u", BASE, None)

    rows = _by_slug(page.rows)
    short = rows["8888666"]
    assert (short.title, short.status, short.price_ton) == ("+888 8 666", SALE, Decimal(21000))
    assert short.ends_at == datetime(2026, 5, 20, 18, 45, tzinfo=UTC)
    assert short.price_usd is None  # "Sale price" label instead of USD
    assert rows["88888881234"].status is AUCTION
    sold = rows["8888001"]
    assert (sold.status, sold.sold_at) == (SOLD, datetime(2022, 12, 9, 11, 58, 30, tzinfo=UTC))


def test_resale_follows_the_view_filter_when_there_is_one() -> None:
    page = parse_listing_page(fixture("usernames_search.html"), "u", BASE, SALE)

    assert _by_slug(page.rows)["borisov"].status is SALE


def test_the_whole_view_answer_holds_the_table_without_the_section_element() -> None:
    answer = fixture("search_whole_view.json")
    assert "js-search-results" not in answer  # its html is what goes inside the section

    outcome = parse_search_answer(answer, "u", BASE, AUCTION)

    assert outcome.failures == []
    assert [row.slug for row in outcome.rows] == ["tonkeeper", "stonfi", "avocado", "mintlab"]
    assert outcome.rows[0].price_ton == Decimal("367.5")
    assert outcome.rows[0].price_usd == Decimal("565.71")
    assert outcome.next_offset is None


def test_off_market_words_in_a_filtered_view_are_failures() -> None:
    page = parse_listing_page(fixture("usernames_search.html"), "u", BASE, AUCTION)

    # taken (no TON), available (a TON amount but no market status), unavailable (no TON)
    assert [failure.reason for failure in page.failures] == [
        "missing_price",
        "unknown_status",
        "missing_price",
    ]
    assert "the price cell shows 'Unknown'" in page.failures[0].detail
