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
        "price_usd": "36.82",
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
    assert err.startswith("error: no_results_table:")
