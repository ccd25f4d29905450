"""``/listings``: the market as a table, with every filter and sort of ``GET /api/v1/listings``.

The form submits with GET, so the page's URL is the query and can be shared; empty fields mean
"not set" (a browser sends them as empty strings, which the REST endpoint would refuse). Paging
uses the REST endpoint's keyset cursor; "Download CSV" is ``/api/v1/export.csv`` with the same
query. Bad input re-renders the form with the problem named, and nothing else is lost.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from pydantic import ValidationError

from fragmenty_api.cursor import CursorError, decode_cursor, encode_cursor
from fragmenty_api.deps import Snapshot, State
from fragmenty_api.listing_query import ListingQuery, QueryError, page_of_rows
from fragmenty_api.models import ListingPublic, fragment_url
from fragmenty_api.query_params import ListingFilters, listing_query
from fragmenty_api.routes_api import MAX_PAGE
from fragmenty_api.snapshot import ListingRow, SortOrder
from fragmenty_api.templating import page_config, templates
from fragmenty_shared.money import from_nanoton

router = APIRouter(include_in_schema=False)

PAGE_SIZES = (25, 50, 100, 200)
DEFAULT_PAGE_SIZE = 50
# The tags fragmenty_shared.memorability gives numbers, in its order.
TAG_NAMES = ("short", "repdigit", "repeat", "sequence", "abab", "palindrome", "run8")
SORT_LABELS = {
    SortOrder.PRICE_ASC: "Price, lowest first",
    SortOrder.PRICE_DESC: "Price, highest first",
    SortOrder.ENDING: "Ending soonest",
    SortOrder.LISTED: "Newest first",
    SortOrder.MEMORABILITY: "Most memorable",
}
_PAGING = ("cursor", "limit")


@dataclass(frozen=True)
class TableRow:
    listing: ListingPublic
    prices_ton: list[str]  # the sparkline, oldest first
    page_url: str
    fragment_url: str


def _filled(request: Request) -> list[tuple[str, str]]:
    """The query's parameters without the empty ones a GET form sends for blank fields."""
    return [(key, value) for key, value in request.query_params.multi_items() if value.strip()]


def _as_model_input(params: Sequence[tuple[str, str]]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for key, value in params:
        if key == "tags":
            data.setdefault("tags", []).append(value)
        elif key not in _PAGING:
            data[key] = value
    return data


def _describe(error: ValidationError) -> list[str]:
    return [
        f"{'.'.join(str(part) for part in problem['loc']) or 'query'}: {problem['msg']}"
        for problem in error.errors()
    ]


def _limit(params: Sequence[tuple[str, str]]) -> int:
    """Rows per page: the form offers PAGE_SIZES, a URL may ask for any count the REST allows."""
    raw = dict(params).get("limit")
    if raw is None:
        return DEFAULT_PAGE_SIZE
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE:
        raise QueryError("limit", f"rows per page: a whole number from 1 to {MAX_PAGE}")
    return int(raw)


def _table_row(row: ListingRow) -> TableRow:
    listing = ListingPublic.from_row(row)
    prices = list(row.recent_prices) or [row.price_nanoton]
    return TableRow(
        listing=listing,
        prices_ton=[str(from_nanoton(price)) for price in prices],
        page_url=f"/listing/{row.asset}/{row.slug}",
        fragment_url=fragment_url(row.asset, row.slug),
    )


@router.get("/listings", response_class=HTMLResponse)
async def listings_page(request: Request, snapshot: Snapshot, state: State) -> HTMLResponse:
    params = _filled(request)
    problems: list[str] = []
    filters = ListingFilters()
    rows: list[TableRow] = []
    next_cursor: str | None = None
    limit = DEFAULT_PAGE_SIZE
    try:
        filters = ListingFilters.model_validate(_as_model_input(params))
        query: ListingQuery = await listing_query(filters)
        limit = _limit(params)
        cursor = dict(params).get("cursor")
        after = None if cursor is None else decode_cursor(cursor, query.sort)
        found, next_key = await page_of_rows(
            snapshot, query, datetime.now(UTC), after=after, limit=limit
        )
        rows = [_table_row(row) for row in found]
        next_cursor = None if next_key is None else encode_cursor(query.sort, next_key)
    except ValidationError as error:
        problems = _describe(error)
    except QueryError as error:
        problems = [f"{error.field}: {error.message}"]
    except CursorError as error:
        problems = [f"cursor: {error} (start again from the first page)"]
    query_params = [(key, value) for key, value in params if key not in _PAGING]
    with_limit = [*query_params, *([("limit", str(limit))] if limit != DEFAULT_PAGE_SIZE else [])]
    links = {
        "first": "/listings?" + urlencode(with_limit),
        "next": None
        if next_cursor is None
        else "/listings?" + urlencode([*with_limit, ("cursor", next_cursor)]),
        "csv": "/api/v1/export.csv?" + urlencode(query_params),
    }
    config = page_config(state, asset=None if filters.asset is None else filters.asset.value)
    return templates.TemplateResponse(
        request,
        "listings.html",
        {
            "config": config,
            # What was entered, as entered: the form comes back whole, also when it was wrong.
            "form": dict(params),
            "form_tags": [value for key, value in params if key == "tags"],
            "problems": problems,
            "rows": rows,
            "limit": limit,
            "page_sizes": sorted({*PAGE_SIZES, limit}),
            "tag_names": TAG_NAMES,
            "sort_labels": SORT_LABELS,
            "links": links,
            "paged": "cursor" in dict(params),
            "loaded_at": snapshot.loaded_at,
        },
        status_code=422 if problems else 200,
    )
