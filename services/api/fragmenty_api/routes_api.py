"""The REST API under ``/api/v1``."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query
from fastapi.responses import Response, StreamingResponse

from fragmenty_api.csv_export import csv_chunks
from fragmenty_api.cursor import CURSOR_PATTERN, CursorError, decode_cursor, encode_cursor
from fragmenty_api.deps import ExpensiveRequest, Snapshot, State, Valuer
from fragmenty_api.listing_detail import build_listing_detail, valid_events
from fragmenty_api.listing_json import listing_page_json
from fragmenty_api.listing_query import ListingQuery, QueryError, matching_rows, page_of_rows
from fragmenty_api.models import (
    EventPage,
    ListingDetail,
    ListingPage,
    MarketDay,
    MarketStats,
    ValuationPublic,
)
from fragmenty_api.query_params import listing_query
from fragmenty_shared.contracts import Asset, EventType
from fragmenty_shared.event_log import SinceError
from fragmenty_shared.memorability import assess_number
from fragmenty_shared.storage import listing_id

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1", tags=["market"])

MAX_PAGE = 500
MAX_EXPORT_ROWS = 100_000
MAX_STATS_DAYS = 366
# Fragment opened in 2022; the bounds keep date arithmetic far from date.min and date.max.
FIRST_STATS_DAY = date(2020, 1, 1)
LAST_STATS_DAY = date(2100, 12, 31)
# The same bounds for the OpenAPI document, which has no minimum or maximum for dates.
STATS_DAY_PATTERN = r"^(20[2-9][0-9]|2100)-[0-9]{2}-[0-9]{2}$"
SlugParam = Annotated[str, Path(pattern=r"^[a-z0-9_]{1,32}$", examples=["88800001234"])]
SINCE_PATTERN = r"^[0-9]{1,18}$"
# Events a filtered page of /events looks at, at most (the filters are applied in memory).
MAX_EVENTS_LOOKED_AT = 5_000

Query_ = Annotated[ListingQuery, Depends(listing_query)]


@router.get(
    "/listings",
    summary="Query the market",
    response_model=ListingPage,
    responses={422: {"description": "A parameter is out of bounds; the body says which."}},
)
async def list_listings(
    query: Query_,
    snapshot: Snapshot,
    valuations: Valuer,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description="Rows per page.")] = 50,
    cursor: Annotated[
        str | None,
        Query(
            pattern=CURSOR_PATTERN,
            description="`next_cursor` of the previous page (opaque; only cursors this API issued).",
        ),
    ] = None,
) -> Response:
    """Listings matching every filter, in `sort` order, a page at a time (keyset cursor)."""
    try:
        after = None if cursor is None else decode_cursor(cursor, query.sort)
    except CursorError as error:
        raise QueryError("cursor", str(error)) from None
    rows, next_key = await page_of_rows(
        snapshot,
        query,
        datetime.now(UTC),
        after=after,
        limit=limit,
        discount_of=valuations.discount_of,
    )
    next_cursor = None if next_key is None else encode_cursor(query.sort, next_key)
    return Response(
        listing_page_json(snapshot, rows, next_cursor, valuations), media_type="application/json"
    )


@router.get(
    "/listings/{asset}/{slug}",
    summary="One listing with its history",
    response_model=ListingDetail,
    responses={404: {"description": "No such listing."}},
)
async def get_listing(
    asset: Asset, slug: SlugParam, snapshot: Snapshot, state: State, valuations: Valuer
) -> ListingDetail:
    """The current state, every observed change and every event, oldest first."""
    row = snapshot.listings.get(listing_id(asset, slug))
    if row is None:
        raise HTTPException(status_code=404, detail="no such listing")
    return build_listing_detail(row, await state.history.events(row.id), valuations.of_row(row))


@router.get(
    "/valuation/{asset}/{slug}",
    summary="Fair value of any number or username",
    response_model=ValuationPublic,
    tags=["valuation"],
    responses={
        422: {"description": "The slug is not a number (888 and digits) or not a username."},
        404: {"description": "No fair value yet: too few sales of this asset, or no fit yet."},
    },
)
async def get_valuation(
    asset: Asset, slug: SlugParam, snapshot: Snapshot, valuations: Valuer
) -> ValuationPublic:
    """What it is worth, listed or not: the expected next sale price with an 80 % band, a
    confidence, and the comparable sales it rests on (docs/valuation.md)."""
    if asset is Asset.NUMBER and assess_number(slug) is None:
        raise QueryError("slug", "a number is 7 to 15 digits, e.g. 88800001234 or 8888080")
    row = snapshot.listings.get(listing_id(asset, slug))
    model = valuations.model
    valuation = None if model is None else model.estimate(asset, slug, explain=True)
    if valuation is None:
        detail = (
            "no fair value yet: the valuation model is not fitted yet"
            if model is None
            else f"no fair value yet: too few {asset.value} sales to value from"
        )
        raise HTTPException(status_code=404, detail=detail)
    return ValuationPublic.of(valuation, row)


@router.get(
    "/events",
    summary="The event feed",
    response_model=EventPage,
    responses={422: {"description": "`since` is not a position, or is ahead of every event."}},
)
async def list_events(
    state: State,
    since: Annotated[
        str | None,
        Query(
            pattern=SINCE_PATTERN,
            description="An event position (`seq`, or `next_since` of the previous page): only "
            "events recorded after it; `0` reads from the first. Without it, the latest events.",
        ),
    ] = None,
    type: Annotated[EventType | None, Query(description="Only this event type.")] = None,
    asset: Annotated[Asset | None, Query(description="Only this asset.")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
) -> EventPage:
    """Events in the order they were recorded. Follow `next_since` to read on without gaps.

    With filters, at most `MAX_EVENTS_LOOKED_AT` events are looked at per page: a page may
    hold fewer than `limit` matches, and `next_since` continues after the last one looked at.
    Without `since`, the events looked at are the recent ones (the stored recent window).
    """
    filtered = type is not None or asset is not None
    batch = MAX_EVENTS_LOOKED_AT if filtered else limit

    def wanted(document: dict[str, Any]) -> bool:
        return (type is None or document.get("type") == type.value) and (
            asset is None or document.get("asset") == asset.value
        )

    if since is None:
        looked_at = await state.event_log.latest(batch, recent_only=True)
        documents = [doc for doc in looked_at if wanted(doc)][-limit:]
        next_since = looked_at[-1]["seq"] if looked_at else 0
    else:
        position = int(since)
        looked_at = await state.event_log.after(position, limit=batch)
        if not looked_at:
            try:
                await state.event_log.check_since(position)
            except SinceError as error:
                raise QueryError("since", str(error)) from None
        documents, next_since = [], position
        for document in looked_at:
            next_since = document["seq"]
            if wanted(document):
                documents.append(document)
                if len(documents) == limit:
                    break
    return EventPage(items=valid_events(documents), next_since=next_since)


@router.get(
    "/stats/market",
    summary="Daily market statistics",
    response_model=MarketStats,
    dependencies=[ExpensiveRequest],
    responses={429: {"description": "Too many requests from this client."}},
)
async def market_stats(
    state: State,
    asset: Annotated[Asset | None, Query(description="One asset, or both.")] = None,
    from_: Annotated[
        date | None,
        Query(
            alias="from",
            ge=FIRST_STATS_DAY,
            le=LAST_STATS_DAY,
            json_schema_extra={"pattern": STATS_DAY_PATTERN},
            description="First UTC day, 2020-01-01 to 2100-12-31 (default: 29 days before `to`).",
        ),
    ] = None,
    to: Annotated[
        date | None,
        Query(
            ge=FIRST_STATS_DAY,
            le=LAST_STATS_DAY,
            json_schema_extra={"pattern": STATS_DAY_PATTERN},
            description="Last UTC day, 2020-01-01 to 2100-12-31 (default: today).",
        ),
    ] = None,
) -> MarketStats:
    """Per asset and day: floor, median and count of listed prices; sold count and volume.
    Days after today (UTC) have no statistics yet and are left out."""
    today = datetime.now(UTC).date()
    last_day = to or today
    first_day = from_ or last_day - timedelta(days=29)
    if first_day > last_day:
        raise QueryError("from", "`from` is after `to`")
    if (last_day - first_day).days >= MAX_STATS_DAYS:
        raise QueryError("from", f"at most {MAX_STATS_DAYS} days at a time")
    assets = [asset] if asset is not None else list(Asset)
    last_day = min(last_day, today)
    days = (
        await state.stats.market_days(first_day, last_day, assets) if first_day <= last_day else []
    )
    return MarketStats(
        days=[
            MarketDay(
                day=day.day,
                asset=day.asset,
                listed_count=day.listed_count,
                floor_ton=day.floor_ton,
                median_ton=day.median_ton,
                sold_count=day.sold_count,
                volume_ton=day.volume_ton,
                volume_usd=day.volume_usd,
                backfilled=day.backfilled,
            )
            for day in days
        ]
    )


@router.get(
    "/export.csv",
    summary="Export a listings query as CSV",
    dependencies=[ExpensiveRequest],
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/csv": {}}, "description": "CSV with a header row."},
        429: {"description": "Too many requests from this client."},
    },
)
async def export_csv(
    query: Query_,
    snapshot: Snapshot,
    valuations: Valuer,
    limit: Annotated[
        int, Query(ge=1, le=MAX_EXPORT_ROWS, description="Most rows.")
    ] = MAX_EXPORT_ROWS,
) -> StreamingResponse:
    """Every listing matching the same filters as `/listings`, in the same order, streamed."""
    # Taken now, in one go: live events may change the snapshot while the CSV streams out.
    rows = await matching_rows(
        snapshot, query, datetime.now(UTC), limit=limit, discount_of=valuations.discount_of
    )
    return StreamingResponse(
        csv_chunks(rows, valuations),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="fragmenty-listings.csv"'},
    )
