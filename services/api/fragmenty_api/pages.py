"""The server-rendered pages: one listing's history and the market over time (the maps are in
``maps``, the table in ``listings_page``); mounts them all with the static files.

Pages get their data as a JSON block (``<script type="application/json">``, escaped by
Jinja's ``tojson``) and draw it with the app's own scripts and its own copy of plotly.js, so the
Content-Security-Policy can forbid inline scripts and every CDN. Everything scraped is escaped:
Jinja autoescapes HTML, and the scripts put text into the DOM only as text.
"""

from __future__ import annotations

import asyncio
import functools
import gzip
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import plotly
from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

from fragmenty_api import listings_page, maps
from fragmenty_api.deps import Snapshot, State, Valuer
from fragmenty_api.listing_detail import build_listing_detail
from fragmenty_api.models import ListingDetail, ValuationPublic, fragment_url
from fragmenty_api.routes_api import SlugParam
from fragmenty_api.templating import PACKAGE_DIR, page_config, templates
from fragmenty_shared.contracts import Asset
from fragmenty_shared.storage import listing_id

PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
MARKET_PAGE_DAYS = 90

router = APIRouter(include_in_schema=False)


def mount(app: FastAPI) -> None:
    app.include_router(router)
    app.include_router(maps.router)
    app.include_router(listings_page.router)
    app.mount("/static", StaticFiles(directory=PACKAGE_DIR / "static"), name="static")


@functools.cache
def _plotly_js_gzipped() -> bytes:
    """plotly.js is 4.8 MB; compressed once, on first request, it is about 1.4 MB."""
    return gzip.compress(PLOTLY_JS.read_bytes(), compresslevel=6, mtime=0)


@router.get("/vendor/plotly.min.js")
async def plotly_js(request: Request) -> Response:
    headers = {"Cache-Control": "public, max-age=86400", "Vary": "Accept-Encoding"}
    if "gzip" in request.headers.get("accept-encoding", ""):
        body = await asyncio.to_thread(_plotly_js_gzipped)
        return Response(
            body,
            media_type="text/javascript",
            headers={**headers, "Content-Encoding": "gzip"},
        )
    return FileResponse(PLOTLY_JS, media_type="text/javascript", headers=headers)


@router.get("/listing/{asset}/{slug}", response_class=HTMLResponse)
async def listing_page(
    request: Request,
    asset: Asset,
    slug: SlugParam,
    snapshot: Snapshot,
    state: State,
    valuations: Valuer,
) -> HTMLResponse:
    row = snapshot.listings.get(listing_id(asset, slug))
    if row is None:
        raise HTTPException(status_code=404, detail="no such listing")
    model = valuations.model
    estimate = None if model is None else model.estimate(asset, slug, explain=True)
    valuation = None if estimate is None else ValuationPublic.of(estimate, row)
    detail: ListingDetail = build_listing_detail(
        row, await state.history.events(row.id), valuations.of_row(row)
    )
    history = [point.model_dump(mode="json") for point in detail.history]
    config = page_config(
        state,
        asset=asset.value,
        slug=slug,
        history=history,
        listing=detail.listing.model_dump(mode="json"),
        valuation=None if valuation is None else valuation.model_dump(mode="json"),
    )
    return templates.TemplateResponse(
        request,
        "listing.html",
        {
            "config": config,
            "detail": detail,
            "valuation": valuation,
            "fragment_url": fragment_url(asset.value, slug),
        },
    )


@router.get("/market", response_class=HTMLResponse)
async def market_page(request: Request, state: State) -> HTMLResponse:
    last_day = datetime.now(UTC).date()
    first_day = last_day - timedelta(days=MARKET_PAGE_DAYS - 1)
    days = await state.stats.market_days(first_day, last_day, list(Asset))
    series: dict[str, dict[str, list[Any]]] = {}
    backfilled_days: list[date] = []  # those the page shows
    for day in days:
        # Days before anything was listed carry no information: start each line at its first.
        column = series.setdefault(
            day.asset.value,
            {"day": [], "floor": [], "median": [], "volume": [], "sold": [], "backfilled": []},
        )
        if not column["day"] and day.listed_count == 0 and day.sold_count == 0:
            continue
        column["day"].append(day.day.isoformat())
        column["floor"].append(None if day.floor_ton is None else str(day.floor_ton))
        column["median"].append(None if day.median_ton is None else str(day.median_ton))
        column["volume"].append(str(day.volume_ton))
        column["sold"].append(day.sold_count)
        column["backfilled"].append(day.backfilled)
        if day.backfilled:
            backfilled_days.append(day.day)
    last_backfilled = max(backfilled_days).isoformat() if backfilled_days else None
    config = page_config(
        state, series=series, today=last_day.isoformat(), lastBackfilled=last_backfilled
    )
    return templates.TemplateResponse(
        request,
        "market.html",
        {"config": config, "days": MARKET_PAGE_DAYS, "last_backfilled": last_backfilled},
    )
