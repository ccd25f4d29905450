"""The market maps: every listing a point, price (log) up, status as colour, time left as size.

Numbers (``/``) are placed by memorability, as on the original Fragmenty. Usernames
(``/usernames``) have no memorability; what sets their price is mostly length, so they are
placed by the number of characters (spread a little within a length so equal lengths do not
pile up on one line).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse

from fragmenty_api.deps import Snapshot, State
from fragmenty_api.listing_query import ListingQuery, matching_rows
from fragmenty_api.models import ListingPublic
from fragmenty_api.query_params import listing_query
from fragmenty_api.snapshot import ListingRow, SortOrder
from fragmenty_api.templating import page_config, templates
from fragmenty_shared.contracts import Asset

router = APIRouter(include_in_schema=False)


class MapMode(StrEnum):
    """The original Fragmenty's three views of the market."""

    ALL = "all"
    CURRENT = "current"
    PAST = "past"


@dataclass(frozen=True)
class MapKind:
    """What one map shows, and how the capped set is chosen."""

    asset: Asset
    path: str
    heading: str
    x_title: str
    order: SortOrder  # the first points drawn when the map is capped
    noun: str
    capped_note: str


NUMBERS = MapKind(
    Asset.NUMBER,
    "/",
    "+888 numbers: memorability against price",
    "Memorability",
    SortOrder.MEMORABILITY,
    "numbers",
    "the most memorable",
)
USERNAMES = MapKind(
    Asset.USERNAME,
    "/usernames",
    "Usernames: length against price",
    "Length (characters)",
    SortOrder.PRICE_DESC,
    "usernames",
    "the most expensive",
)


def _is_current(row: ListingRow, now: datetime) -> bool:
    return row.is_listed and (row.ends_at is None or row.ends_at > now)


def _in_mode(mode: MapMode, row: ListingRow, now: datetime) -> bool:
    if mode is MapMode.ALL:
        return True
    return _is_current(row, now) == (mode is MapMode.CURRENT)


def _map_points(rows: list[ListingRow]) -> dict[str, list[Any]]:
    columns: dict[str, list[Any]] = {
        key: []
        for key in ("slug", "title", "status", "memorability", "length", "ton", "usd", "ends_at")
    }
    for row in rows:
        listing = ListingPublic.from_row(row)
        columns["slug"].append(row.slug)
        columns["title"].append(row.title)
        columns["status"].append(row.status)
        columns["memorability"].append(row.memorability)
        columns["length"].append(len(row.slug))
        columns["ton"].append(str(listing.price_ton))
        columns["usd"].append(None if listing.price_usd is None else str(listing.price_usd))
        columns["ends_at"].append(None if row.ends_at is None else row.ends_at.isoformat())
    return columns


async def _render(
    kind: MapKind,
    request: Request,
    snapshot: Snapshot,
    state: State,
    query: ListingQuery,
    mode: MapMode,
) -> HTMLResponse:
    now = datetime.now(UTC)
    ordered = ListingQuery.create(
        asset=kind.asset,
        status=query.status,
        q=query.q,
        min_price=query.min_price,
        max_price=query.max_price,
        currency=query.currency,
        min_memorability=query.min_memorability,
        tags=query.tags,
        include_delisted=mode is not MapMode.CURRENT,
        sort=kind.order,
    )
    needs_memorability = kind.asset is Asset.NUMBER  # a number without one has no place

    def drawn(row: ListingRow) -> bool:
        return (not needs_memorability or row.memorability is not None) and _in_mode(mode, row, now)

    matches = await matching_rows(snapshot, ordered, now, extra=drawn)
    rows = matches[: state.settings.map_max_points]
    config = page_config(
        state,
        mode=mode.value,
        asset=kind.asset.value,
        xTitle=kind.x_title,
        points=_map_points(rows),
    )
    return templates.TemplateResponse(
        request,
        "map.html",
        {
            "config": config,
            "kind": kind,
            "mode": mode.value,
            "query": query,
            "shown": len(rows),
            "total": len(matches),
            "loaded_at": snapshot.loaded_at,
        },
    )


ListingQueryParam = Annotated[ListingQuery, Depends(listing_query)]
ModeParam = Annotated[MapMode, Query()]


@router.get("/", response_class=HTMLResponse)
async def numbers_map(
    request: Request,
    snapshot: Snapshot,
    state: State,
    query: ListingQueryParam,
    mode: ModeParam = MapMode.CURRENT,
) -> HTMLResponse:
    return await _render(NUMBERS, request, snapshot, state, query, mode)


@router.get("/usernames", response_class=HTMLResponse)
async def usernames_map(
    request: Request,
    snapshot: Snapshot,
    state: State,
    query: ListingQueryParam,
    mode: ModeParam = MapMode.CURRENT,
) -> HTMLResponse:
    return await _render(USERNAMES, request, snapshot, state, query, mode)
