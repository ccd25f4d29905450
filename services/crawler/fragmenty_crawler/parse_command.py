"""``fragmenty-crawler parse FILE [--url URL]``: read a saved page the way the crawler would.

Prints one JSON object per listing per line (``ListingObserved`` field names) on stdout and
every problem on stderr, precisely (reason code, row, field). Exit status: 0 all read,
1 some rows could not be read, 2 the file is not a readable page at all. This is how users
report markup drift: attach the file and the stderr lines.
"""

from __future__ import annotations

import json
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import parse_qs, urlsplit

from fragmenty_crawler.parsing.errors import ParseFailure
from fragmenty_crawler.parsing.item import ItemPage, parse_item_page
from fragmenty_crawler.parsing.listing import ListingRow, parse_listing_page, parse_search_answer
from fragmenty_shared.contracts import ListingStatus

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
    try:
        if text.lstrip().startswith("{"):
            status = _status_of(url) or _status_of(_answer_url(text))
            outcome = parse_search_answer(text, where, base, status)
            rows, failures, rate = outcome.rows, outcome.failures, ton_rate
        elif _is_item_page(text, url):
            item = parse_item_page(text, where)
            out.write(json.dumps(_item_json(item), default=str) + "\n")
            return 0
        else:
            page = parse_listing_page(text, where, base, _status_of(url))
            rows, failures = page.rows, page.failures
            rate = page.init.ton_usd_rate if page.init else ton_rate
    except ParseFailure as page_failure:
        err.write(f"error: {page_failure.reason}: {page_failure.detail}\n")
        return 2
    for row in rows:
        out.write(json.dumps(_row_json(row, rate), default=str) + "\n")
    for failure in failures:
        err.write(f"row not read: {failure.reason}: {failure.detail}\n")
    if not text.lstrip().startswith("{") and rate is None:  # pragma: no cover - pages carry a rate
        err.write("warning: no tonRate in the page\n")
    return 1 if failures else 0


def _row_json(row: ListingRow, rate: Decimal | None) -> dict[str, Any]:
    return {
        "asset": row.asset.value,
        "slug": row.slug,
        "title": row.title,
        "status": row.status.value,
        "price_ton": str(row.price_ton),
        "price_usd": None if row.price_usd is None else str(row.price_usd),
        "ton_usd_rate": None if rate is None else str(rate),
        "ends_at": row.ends_at.isoformat() if row.ends_at else None,
        "sold_at": row.sold_at.isoformat() if row.sold_at else None,
        "url": row.url,
    }


def _item_json(item: ItemPage) -> dict[str, Any]:
    def history(entries: list[Any]) -> list[dict[str, Any]]:
        return [entry.model_dump(mode="json") for entry in entries]

    return {
        "asset": item.asset.value,
        "slug": item.slug,
        "title": item.title,
        "status": item.status.value,
        "price_ton": None if item.price_ton is None else str(item.price_ton),
        "ton_usd_rate": str(item.init.ton_usd_rate),
        "ends_at": item.ends_at.isoformat() if item.ends_at else None,
        "sold_at": item.sold_at.isoformat() if item.sold_at else None,
        "highest_bid_ton": None if item.highest_bid_ton is None else str(item.highest_bid_ton),
        "bid_step_ton": None if item.bid_step_ton is None else str(item.bid_step_ton),
        "bid_step_pct": None if item.bid_step_pct is None else str(item.bid_step_pct),
        "min_bid_ton": None if item.min_bid_ton is None else str(item.min_bid_ton),
        "owner": item.owner,
        "bid_history": history(item.bid_history),
        "ownership_history": history(item.ownership_history),
        "more_bids_offset": item.more_bids_offset,
        "more_owners_offset": item.more_owners_offset,
    }


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


def _answer_url(text: str) -> str | None:
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return None
    answer_url = data.get("url") if isinstance(data, dict) else None
    return answer_url if isinstance(answer_url, str) else None


def _is_item_page(text: str, url: str | None) -> bool:
    if url:
        path = urlsplit(url).path
        return path.startswith(("/number/", "/username/"))
    return "tm-section-header-domain" in text and "js-search-results" not in text
