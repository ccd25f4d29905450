"""``fragmenty-crawler parse``: JSON lines on stdout, precise errors on stderr, exit codes."""

import io
import json
from pathlib import Path

from fragmenty_crawler.parse_command import parse_file
from tests.unit.crawler.fixtures import FIXTURES


def _run(path: Path, url: str | None = None) -> tuple[int, list[dict[str, object]], str]:
    out, err = io.StringIO(), io.StringIO()
    code = parse_file(path, url, None, out, err)
    return code, [json.loads(line) for line in out.getvalue().splitlines()], err.getvalue()


def test_a_listing_page_prints_one_object_per_listing_with_contract_names() -> None:
    code, rows, err = _run(
        FIXTURES / "numbers_auction.html", "https://fragment.com/numbers?filter=auction"
    )

    assert (code, err) == (0, "")
    assert len(rows) == 3
    assert rows[2] == {
        "asset": "number",
        "slug": "88812345678",
        "title": "+888 1234 5678",
        "status": "auction",
        "price_ton": "30.25",
        "price_usd": "36.83",
        "ton_usd_rate": "1.21735963",
        "ends_at": "2026-04-20T08:15:00+00:00",
        "sold_at": None,
        "url": "https://fragment.com/number/88812345678",
    }


def test_an_item_page_adds_bid_box_owner_and_histories() -> None:
    code, rows, _ = _run(FIXTURES / "item_number_auction.html")

    assert code == 0
    assert rows[0]["highest_bid_ton"] == "34900"
    assert rows[0]["bid_step_ton"] == "1745"
    assert len(rows[0]["bid_history"]) == 2  # type: ignore[arg-type]


def test_an_api_answer_takes_the_view_from_its_url_field() -> None:
    code, rows, _ = _run(FIXTURES / "search_first.json")

    assert code == 0
    assert rows[0]["status"] == "sold"


def test_unreadable_rows_are_named_on_stderr_with_exit_1(tmp_path: Path) -> None:
    page = (FIXTURES / "numbers_sale.html").read_text().replace("1,250", "1.250.0")
    saved = tmp_path / "page.html"
    saved.write_text(page)

    code, rows, err = _run(saved, "https://fragment.com/numbers?filter=sale")

    assert code == 1
    assert [row["slug"] for row in rows] == ["88899887766"]
    assert "bad_price" in err
    assert "row 1" in err
    assert "'1.250.0'" in err


def test_a_file_that_is_not_a_listing_page_exits_2() -> None:
    code, rows, err = _run(FIXTURES / "no_table.html")

    assert (code, rows) == (2, [])
    assert err.startswith("error: no_results_table: expected a listing page")


def test_an_auction_item_page_without_tr_prints_highest_bid_step_and_minimum_with_usd() -> None:
    code, rows, err = _run(FIXTURES / "item_username_auction.html")

    assert (code, err) == (0, "")
    (item,) = rows
    assert (item["status"], item["highest_bid_ton"], item["highest_bid_usd"]) == (
        "auction",
        "350",
        "538.77",
    )
    assert (item["bid_step_ton"], item["bid_step_pct"]) == ("17.5", "5")
    assert (item["min_bid_ton"], item["min_bid_usd"]) == ("367.5", "565.71")
    assert item["ends_at"] == "2026-04-14T19:07:41+00:00"


def test_a_sold_item_page_prints_sale_price_owner_name_purchase_time_and_transfers() -> None:
    code, rows, _ = _run(FIXTURES / "item_number_sold.html")

    assert code == 0
    (item,) = rows
    assert (item["status"], item["price_ton"], item["price_usd"]) == ("sold", "130000", "158257")
    assert (item["owner"], item["owner_name"]) == (
        "EQNewOwner777e_w2ZDN6Asw0w4BqEbrAIKp3EBQ-EzTVVcY",
        "eightoeight.ton",
    )
    assert item["sold_at"] == "2026-03-08T16:20:00+00:00"
    history = item["ownership_history"]
    assert isinstance(history, list)
    assert [entry["kind"] for entry in history] == ["sale", "transfer"]
    assert history[1]["price_ton"] is None


def test_a_whole_view_search_answer_is_read_and_its_url_gives_the_view() -> None:
    code, rows, err = _run(FIXTURES / "search_whole_view.json")

    assert (code, err) == (0, "")
    assert [row["slug"] for row in rows] == ["tonkeeper", "stonfi", "avocado", "mintlab"]
    assert {row["status"] for row in rows} == {"auction"}


def test_a_history_answer_prints_its_entries() -> None:
    code, rows, _ = _run(FIXTURES / "history_owners_more.json")

    assert code == 0
    assert [(row["kind"], row["price_ton"]) for row in rows] == [
        ("transfer", None),
        ("sale", "90000"),
    ]


def test_off_market_rows_are_printed_as_not_listed() -> None:
    code, rows, _ = _run(FIXTURES / "usernames_search.html")

    assert code == 0
    unlisted = [row for row in rows if row.get("listed") is False]
    assert [(row["slug"], row["status"]) for row in unlisted] == [
        ("bori", "taken"),
        ("borisbot", "available"),
        ("borya", "unavailable"),
    ]


def test_errors_name_the_page_the_shape_expected_and_what_was_missing(tmp_path: Path) -> None:
    saved = tmp_path / "auction.html"
    saved.write_text(
        (FIXTURES / "item_username_auction.html").read_text().replace("icon-ton", "icon-gem")
    )

    code, rows, err = _run(saved, "https://fragment.com/username/tonkeeper")

    assert (code, rows) == (2, [])
    assert err.startswith("error: missing_price: expected an item page")
    assert "https://fragment.com/username/tonkeeper: auction page without a Minimum Bid" in err
    answer_code, _, answer_err = _run(FIXTURES / "no_table.html")
    assert answer_code == 2
    assert "expected a listing page" in answer_err
    assert str(FIXTURES / "no_table.html") in answer_err
