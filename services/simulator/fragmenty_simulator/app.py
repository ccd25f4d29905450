"""The simulator's HTTP surface: Fragment's pages and API, plus ``/_simulator/`` controls.

Fragment-like routes: ``GET /`` (usernames) and ``GET /numbers`` with ``sort``/``filter``/``query``,
``GET /number/<slug>`` and ``/username/<slug>`` (302 when unknown), ``POST /api?hash=`` with
``searchAuctions``, ``getOrdersHistory`` and ``getOwnersHistory``. The session cookie
``stel_ssid`` is set by the first page GET; the API refuses a request without it or with a hash
that is not the session's. Controls are documented in docs/simulator.md.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import hmac
import json
import random
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qsl, urlencode

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from fragmenty_shared.contracts import Asset, ListingStatus
from fragmenty_simulator import render
from fragmenty_simulator.faults import Faults
from fragmenty_simulator.market import Market, SimListing, end_auction, listing_json

SESSION_COOKIE = "stel_ssid"
_ASSET_TYPES = {"numbers": Asset.NUMBER, "usernames": Asset.USERNAME}
_STATE_TYPE = {Asset.USERNAME: 1, Asset.NUMBER: 3}


@dataclass
class SimulatorConfig:
    page_size: int = 500  # rows per listing page and per "Show more" part
    history_page_size: int = 5  # history rows on the item page and per "Show more"
    evolve_every: float = 0.0  # seconds between market ticks; 0 = a still market
    seed: int = 1


class Simulator:
    """The market, the faults and the session secret behind one app."""

    def __init__(self, market: Market, faults: Faults, config: SimulatorConfig) -> None:
        self.market = market
        self.faults = faults
        self.config = config
        self._secret = secrets.token_bytes(16)
        self._rng = random.Random(config.seed + 1)  # noqa: S311 - a reproducible market, not crypto
        self._views: dict[tuple[Asset, str, str, str], list[SimListing]] = {}
        self._rows: dict[tuple[Asset, str, bool], str] = {}
        self._cached_version = market.version

    def view(self, asset: Asset, status_filter: str, query: str, sort: str) -> list[SimListing]:
        """The rows of a view, cached until the market next changes."""
        self._drop_stale_caches()
        key = (asset, status_filter, query, sort)
        rows = self._views.get(key)
        if rows is None:
            rows = self._views[key] = self.market.view(asset, status_filter, query, sort)
        return rows

    def rows_html(self, rows: list[SimListing], search_mode: bool) -> str:
        """The ``tr`` markup of ``rows``; each row is rendered once per market version, so a
        big simulated market answers quickly (Fragment's own speed is not what tests measure)."""
        self._drop_stale_caches()
        parts = []
        for listing in rows:
            key = (listing.asset, listing.slug, search_mode)
            markup = self._rows.get(key)
            if markup is None:
                markup = self._rows[key] = render.row_html(
                    listing, self.market.ton_rate, search_mode
                )
            parts.append(markup)
        return "".join(parts)

    def _drop_stale_caches(self) -> None:
        if self._cached_version != self.market.version:
            self._views.clear()
            self._rows.clear()
            self._cached_version = self.market.version

    def api_hash(self, session: str) -> str:
        return hmac.new(self._secret, session.encode(), hashlib.sha256).hexdigest()[:18]

    def tick(self) -> None:
        self.market.tick(self._rng)


def _encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"o:{offset}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> int | None:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    kind, _, number = text.partition(":")
    return int(number) if kind == "o" and number.isdigit() else None


def create_app(simulator: Simulator) -> Starlette:
    sim = simulator

    def finish(text: str, response_type: type[Response], **kwargs: Any) -> Response:
        if sim.faults.markup_change:
            text = text.replace("icon-ton", "icon-gem")
        if sim.faults.take("truncate"):
            text = text[: int(len(text) * 0.6)]
        if response_type is JSONResponse:
            return Response(text, media_type="application/json", **kwargs)
        return response_type(text, **kwargs)

    def session_of(request: Request) -> tuple[str, bool]:
        existing = request.cookies.get(SESSION_COOKIE)
        return (existing, False) if existing else (secrets.token_hex(16), True)

    def with_cookie(response: Response, session: str, is_new: bool) -> Response:
        if is_new:
            response.set_cookie(SESSION_COOKIE, session, httponly=True, samesite="lax")
        return response

    async def listing_page(request: Request) -> Response:
        asset = Asset.NUMBER if request.url.path.rstrip("/") == "/numbers" else Asset.USERNAME
        params = request.query_params
        query, status_filter = params.get("query", ""), params.get("filter", "")
        rows = sim.view(asset, status_filter, query, params.get("sort", "price_desc"))
        page = rows[: sim.config.page_size]
        cursor = _encode_cursor(len(page)) if len(rows) > len(page) else None
        search_mode = bool(query)
        body = sim.rows_html(page, search_mode)
        session, is_new = session_of(request)
        section = render.results_section(
            render.results_inner(
                body,
                render.load_more(cursor),
                asset=asset,
                search_mode=search_mode,
                sort=params.get("sort", "price_desc"),
                status_filter=status_filter,
            )
        )
        text = render.document(
            "Fragment", section, render.ajinit(sim.api_hash(session), sim.market.ton_rate)
        )
        return with_cookie(finish(text, HTMLResponse), session, is_new)

    async def item_page(request: Request) -> Response:
        asset = Asset(request.url.path.strip("/").split("/", 1)[0])
        slug = request.path_params["slug"].lower()
        listing = sim.market.get(asset, slug)
        if listing is None:
            listing_path = "/numbers" if asset is Asset.NUMBER else "/"
            return RedirectResponse(f"{listing_path}?{urlencode({'query': slug})}", status_code=302)
        session, is_new = session_of(request)
        init = render.ajinit(
            sim.api_hash(session),
            sim.market.ton_rate,
            type=_STATE_TYPE[asset],
            username=slug,
            itemTitle=listing.title,
        )
        main = render.item_main(listing, sim.market.ton_rate, sim.config.history_page_size)
        return with_cookie(
            finish(render.document(listing.title, main, init), HTMLResponse), session, is_new
        )

    async def api(request: Request) -> Response:
        session = request.cookies.get(SESSION_COOKIE)
        if not session or request.query_params.get("hash") != sim.api_hash(session):
            return JSONResponse({"error": "Access denied"})
        # The API takes application/x-www-form-urlencoded bodies; parse_qsl needs no extra library.
        fields = dict(parse_qsl((await request.body()).decode("utf-8", "replace")))
        method = fields.get("method", "")
        if method == "searchAuctions":
            return search_auctions(fields)
        if method in ("getOrdersHistory", "getOwnersHistory"):
            return history(fields, bids=method == "getOrdersHistory")
        return JSONResponse({"error": "Unknown method"})

    def search_auctions(fields: dict[str, str]) -> Response:
        asset = _ASSET_TYPES.get(fields.get("type", ""))
        if asset is None:
            return JSONResponse({"error": "Bad type"})
        query, status_filter = fields.get("query", ""), fields.get("filter", "")
        sort = fields.get("sort", "price_desc")
        rows = sim.view(asset, status_filter, query, sort)
        start = 0
        if "offset_id" in fields:
            decoded = _decode_cursor(fields["offset_id"])
            if decoded is None:
                return JSONResponse({"error": "Bad offset"})
            start = decoded
        page = rows[start : start + sim.config.page_size]
        end = start + len(page)
        cursor = _encode_cursor(end) if len(rows) > end else None
        search_mode = bool(query)
        body = sim.rows_html(page, search_mode)
        path = "/numbers" if asset is Asset.NUMBER else "/"
        answer: dict[str, Any]
        if "offset_id" in fields:
            answer = {"ok": True, "part": True, "body": body, "foot": render.load_more(cursor)}
        else:
            answer = {
                "ok": True,
                # As Fragment answers: what goes inside the results section, not the section.
                "html": render.results_inner(
                    body,
                    render.load_more(cursor),
                    asset=asset,
                    search_mode=search_mode,
                    sort=sort,
                    status_filter=status_filter,
                ),
                "url": f"{path}?{urlencode({'sort': sort, 'filter': status_filter, 'query': query})}",
                "expire": int(sim.market.now.timestamp()) + 3600,
                "show_recent_bids": True,
            }
        return finish(json.dumps(answer), JSONResponse)

    def history(fields: dict[str, str], *, bids: bool) -> Response:
        asset = {"1": Asset.USERNAME, "3": Asset.NUMBER}.get(fields.get("type", ""))
        listing = sim.market.get(asset, fields.get("username", "").lower()) if asset else None
        offset = fields.get("offset_id", "")
        if listing is None or not offset.isdigit():
            return JSONResponse({"error": "Bad request"})
        records = listing.bids if bids else listing.sales
        start, size = int(offset), sim.config.history_page_size
        page = records[start : start + size]
        cursor = str(start + size) if len(records) > start + size else None
        answer = {
            "ok": True,
            "body": render.history_rows(page),
            "foot": render.history_foot("orders" if bids else "owners", cursor),
        }
        return finish(json.dumps(answer), JSONResponse)

    routes = [
        Route("/", listing_page, methods=["GET"]),
        Route("/numbers", listing_page, methods=["GET"]),
        Route("/number/{slug}", item_page, methods=["GET"]),
        Route("/username/{slug}", item_page, methods=["GET"]),
        Route("/api", api, methods=["POST"]),
        *control_routes(sim),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        evolver = asyncio.create_task(_evolve(sim)) if sim.config.evolve_every > 0 else None
        try:
            yield
        finally:
            if evolver is not None:
                evolver.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await evolver

    app = Starlette(routes=routes, lifespan=lifespan)
    app.add_middleware(_FaultMiddleware, simulator=sim)
    return app


async def _evolve(sim: Simulator) -> None:
    while True:
        await asyncio.sleep(sim.config.evolve_every)
        sim.tick()


class _FaultMiddleware:
    """429 storms and 5xx for Fragment-like routes; the controls always answer."""

    def __init__(self, app: ASGIApp, simulator: Simulator) -> None:
        self.app = app
        self.sim = simulator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope["path"].startswith("/_simulator"):
            faults = self.sim.faults
            if faults.take("rate_limit"):
                headers = {"Retry-After": str(faults.retry_after)}
                await Response("Too Many Requests", 429, headers=headers)(scope, receive, send)
                return
            if faults.take("server_errors"):
                await Response("Bad Gateway", 502)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def control_routes(sim: Simulator) -> list[Route]:
    """``/_simulator/...``: read the market, change listings, switch faults, advance time."""

    def base_url(request: Request) -> str:
        return str(request.base_url).rstrip("/")

    async def market(request: Request) -> Response:
        return JSONResponse(sim.market.as_json(base_url(request)))

    async def change_listing(request: Request) -> Response:
        asset, slug = _asset_slug(request)
        if asset is None:
            return JSONResponse({"error": "asset must be number or username"}, 400)
        try:
            changes = await request.json()
            listing, created = _apply_changes(sim.market, asset, slug, changes)
        except (ValueError, InvalidOperation, KeyError, TypeError) as exc:
            return JSONResponse({"error": str(exc)}, 400)
        sim.market.touch()
        body = listing_json(listing, sim.market.ton_rate, base_url(request))
        return JSONResponse(body, 201 if created else 200)

    async def withdraw_listing(request: Request) -> Response:
        asset, slug = _asset_slug(request)
        if asset is None or sim.market.listings.pop((asset, slug), None) is None:
            return JSONResponse({"error": "no such listing"}, 404)
        sim.market.touch()
        return JSONResponse({"withdrawn": f"{asset.value}:{slug}"})

    async def end_listing_auction(request: Request) -> Response:
        asset, slug = _asset_slug(request)
        listing = sim.market.get(asset, slug) if asset else None
        if listing is None or listing.status is not ListingStatus.AUCTION:
            return JSONResponse({"error": "no such auction"}, 404)
        end_auction(listing, sim.market.now, listing.owner)
        sim.market.touch()
        return JSONResponse(listing_json(listing, sim.market.ton_rate, base_url(request)))

    async def faults(request: Request) -> Response:
        if request.method == "DELETE":
            sim.faults = Faults()
        elif request.method == "POST":
            try:
                sim.faults.update(await request.json())
            except (ValueError, AttributeError) as exc:
                return JSONResponse({"error": str(exc)}, 400)
        return JSONResponse(sim.faults.as_json())

    async def tick(_: Request) -> Response:
        sim.tick()
        return JSONResponse(
            {"now": sim.market.now.isoformat(), "listings": len(sim.market.listings)}
        )

    return [
        Route("/_simulator/market", market, methods=["GET"]),
        Route("/_simulator/listings/{asset}/{slug}", change_listing, methods=["POST"]),
        Route("/_simulator/listings/{asset}/{slug}", withdraw_listing, methods=["DELETE"]),
        Route(
            "/_simulator/listings/{asset}/{slug}/end-auction", end_listing_auction, methods=["POST"]
        ),
        Route("/_simulator/faults", faults, methods=["GET", "POST", "DELETE"]),
        Route("/_simulator/tick", tick, methods=["POST"]),
    ]


def _asset_slug(request: Request) -> tuple[Asset | None, str]:
    raw = request.path_params["asset"]
    asset = Asset(raw) if raw in ("number", "username") else None
    return asset, request.path_params["slug"].lower()


def _apply_changes(
    market: Market, asset: Asset, slug: str, changes: dict[str, Any]
) -> tuple[SimListing, bool]:
    """Set ``price_ton``/``status``/``ends_at``/``sold_at``; creates the listing when it is new."""
    allowed = {"price_ton", "status", "ends_at", "sold_at", "resale"}
    unknown = set(changes) - allowed
    if unknown:
        raise ValueError(f"unknown fields: {sorted(unknown)}")
    listing = market.get(asset, slug)
    created = listing is None
    if listing is None:
        if "status" not in changes or "price_ton" not in changes:
            raise ValueError("a new listing needs status and price_ton")
        listing = SimListing(
            asset, slug, ListingStatus(changes["status"]), Decimal(0), market.now, None, None,
            "UQ" + "A" * 46,
        )  # fmt: skip
        market.listings[(asset, slug)] = listing
    if "price_ton" in changes:
        price = Decimal(str(changes["price_ton"]))
        if not price.is_finite() or price <= 0:
            raise ValueError("price_ton must be a positive decimal")
        listing.price_ton = price
    if "status" in changes:
        listing.status = ListingStatus(changes["status"])
    for name in ("ends_at", "sold_at"):
        if name in changes:
            value = changes[name]
            setattr(listing, name, datetime.fromisoformat(value) if value else None)
    if "resale" in changes:
        listing.resale = bool(changes["resale"])
    _fill_required_times(market, listing)
    return listing, created


def _fill_required_times(market: Market, listing: SimListing) -> None:
    """Keep the listing renderable: auctions need an end, sold listings a sale date."""

    if listing.status is ListingStatus.AUCTION and listing.ends_at is None:
        listing.ends_at = market.now + timedelta(days=1)
    if listing.status is ListingStatus.SOLD:
        listing.ends_at = None
        listing.sold_at = listing.sold_at or market.now
    else:
        listing.sold_at = None
