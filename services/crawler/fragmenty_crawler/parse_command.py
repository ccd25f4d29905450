"""``fragmenty-crawler parse FILE [--url URL]``: read a saved page the way the crawler would.

Accepts a saved listing page (browse or search view), a saved item page, a ``searchAuctions``
answer (the whole-view ``{ok, html, url, ...}`` or a load-more ``{part, body, foot}``) and a
``getOrdersHistory``/``getOwnersHistory`` answer (``{body, foot}``). Prints one JSON object per
listing per line (``ListingObserved`` field names; item pages add the price box, owner and
histories) on stdout and every problem on stderr, naming the page, the shape expected and what
was missing. Exit status: 0 all read, 1 some rows could not be read, 2 the file is not a
readable page at all. This is how users report markup drift: attach the file and the stderr.
"""

from __future__ import annotations

import json
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import parse_qs, urlsplit

from fragmenty_crawler.parsing.errors import ParseFailure
from fragmenty_crawler.parsing.item import (
    HISTORY_SHAPE,
    ITEM_SHAPE,
    Amount,
    ItemPage,
    parse_history_answer,
    parse_item_page,
)
from fragmenty_crawler.parsing.listing import (
    ANSWER_SHAPE,
    PAGE_SHAPE,
    ListingRow,
    OffMarketRow,
    RowsOutcome,
    parse_listing_page,
    parse_search_answer,
)
from fragmenty_shared.contracts import HistoryEntry, ListingStatus

DEFAULT_BASE = "https://fragment.com"


def parse_file(
    path: Path,
    url: str | None,
    ton_rate: Decimal | None,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
) -> int:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        err.write(f"error: cannot read {path}: {exc}\n")
        return 2
    where = url or str(path)
    base = _base_url(url)
    shape = PAGE_SHAPE
    try:
        if text.lstrip().startswith("{"):
            data = _json_object(text, where)
            if "html" in data or data.get("part"):
                shape = ANSWER_SHAPE
                status = _status_of(url) or _status_of(_answer_url(data))
                outcome: RowsOutcome = parse_search_answer(text, where, base, status)
                rate = ton_rate
            else:
                shape = HISTORY_SHAPE
                part = parse_history_answer(text, where)
                for entry in part.entries:
                    out.write(json.dumps(_entry_json(entry)) + "\n")
                return 0
        elif _is_item_page(text, url):
            shape = ITEM_SHAPE
            out.write(json.dumps(item_json(parse_item_page(text, where))) + "\n")
            return 0
        else:
            page = parse_listing_page(text, where, base, _status_of(url))
            outcome, rate = page, page.init.ton_usd_rate if page.init else ton_rate
    except ParseFailure as page_failure:
        err.write(f"error: {page_failure.reason}: expected {shape}: {page_failure.detail}\n")
        return 2
    for row in outcome.rows:
        out.write(json.dumps(_row_json(row, rate)) + "\n")
    for unlisted in outcome.off_market:
        out.write(json.dumps(_off_market_json(unlisted)) + "\n")
    for failure in outcome.failures:
        err.write(f"row not read: {failure.reason}: {failure.detail}\n")
    return 1 if outcome.failures else 0


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def _row_json(row: ListingRow, rate: Decimal | None) -> dict[str, Any]:
    return {
        "asset": row.asset.value,
        "slug": row.slug,
        "title": row.title,
        "status": row.status.value,
        "price_ton": str(row.price_ton),
        "price_usd": _text(row.price_usd),
        "ton_usd_rate": _text(rate),
        "ends_at": row.ends_at.isoformat() if row.ends_at else None,
        "sold_at": row.sold_at.isoformat() if row.sold_at else None,
        "url": row.url,
    }


def _off_market_json(row: OffMarketRow) -> dict[str, Any]:
    return {
        "asset": row.asset.value,
        "slug": row.slug,
        "title": row.title,
        "status": row.state,
        "listed": False,
        "price_ton": _text(row.price_ton),
    }


def _entry_json(entry: HistoryEntry) -> dict[str, Any]:
    dumped: dict[str, Any] = entry.model_dump(mode="json")
    return dumped


def item_json(item: ItemPage) -> dict[str, Any]:
    """An item page as one JSON object: identity, price box (TON and USD), owner, histories."""

    def ton(amount: Amount | None) -> str | None:
        return None if amount is None else str(amount.ton)

    def usd(amount: Amount | None) -> str | None:
        return None if amount is None else _text(amount.usd)

    return {
        "asset": item.asset.value,
        "slug": item.slug,
        "title": item.title,
        "status": item.state.value,
        "price_ton": ton(item.price),
        "price_usd": usd(item.price),
        "ton_usd_rate": str(item.init.ton_usd_rate),
        "ends_at": item.ends_at.isoformat() if item.ends_at else None,
        "sold_at": item.sold_at.isoformat() if item.sold_at else None,
        "highest_bid_ton": ton(item.highest_bid),
        "highest_bid_usd": usd(item.highest_bid),
        "bid_step_ton": ton(item.bid_step),
        "bid_step_pct": _text(item.bid_step_pct),
        "min_bid_ton": ton(item.min_bid),
        "min_bid_usd": usd(item.min_bid),
        "owner": item.owner,
        "owner_name": item.owner_name,
        "bid_history": [_entry_json(entry) for entry in item.bid_history],
        "ownership_history": [_entry_json(entry) for entry in item.ownership_history],
        "more_bids_offset": item.more_bids_offset,
        "more_owners_offset": item.more_owners_offset,
    }


def _json_object(text: str, where: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ParseFailure("bad_json", f"{where}: the file is not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ParseFailure("bad_answer", f"{where}: the file's JSON is not an object")
    return data


def _base_url(url: str | None) -> str:
    if not url:
        return DEFAULT_BASE
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else DEFAULT_BASE


def _status_of(url: str | None) -> ListingStatus | None:
    if not url:
        return None
    values = parse_qs(urlsplit(url).query).get("filter", [""])
    try:
        return ListingStatus(values[0])
    except ValueError:
        return None


def _answer_url(data: dict[str, Any]) -> str | None:
    answer_url = data.get("url")
    return answer_url if isinstance(answer_url, str) else None


def _is_item_page(text: str, url: str | None) -> bool:
    if url:
        path = urlsplit(url).path
        return path.startswith(("/number/", "/username/"))
    return "tm-section-header-status" in text and "js-search-results" not in text
