"""The simulator: a deterministic market, Fragment's paging and session rules, controls, faults."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest

from fragmenty_crawler.parsing.item import parse_item_page
from fragmenty_crawler.parsing.listing import ListingRow, parse_listing_page, parse_search_answer
from fragmenty_shared.contracts import Asset, ListingStatus
from fragmenty_simulator.app import Simulator, SimulatorConfig, create_app
from fragmenty_simulator.faults import Faults
from fragmenty_simulator.market import Market

EPOCH = datetime(2026, 4, 1, tzinfo=UTC)
BASE = "http://sim"


def _simulator(size: int = 300, seed: int = 5, page_size: int = 40) -> Simulator:
    return Simulator(
        Market.generate(size, seed, EPOCH),
        Faults(),
        SimulatorConfig(page_size=page_size, seed=seed),
    )


@pytest.fixture
def simulator() -> Simulator:
    return _simulator()


@pytest.fixture
async def client(simulator: Simulator) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(simulator))
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as http:
        yield http


async def _crawl_view(
    client: httpx.AsyncClient, asset: Asset, status: ListingStatus
) -> list[ListingRow]:
    path = "/numbers" if asset is Asset.NUMBER else "/"
    first = await client.get(path, params={"filter": status.value})
    page = parse_listing_page(first.text, str(first.url), BASE, status)
    assert page.failures == []
    assert page.init is not None
    rows, cursor = list(page.rows), page.next_offset
    while cursor:
        answer = await client.post(
            f"/api?hash={page.init.api_hash}",
            data={
                "method": "searchAuctions",
                "type": asset.value + "s",
                "filter": status.value,
                "offset_id": cursor,
            },
        )
        part = parse_search_answer(answer.text, "api", BASE, status)
        assert part.failures == []
        rows.extend(part.rows)
        cursor = part.next_offset
    return rows


def _as_market_json(row: ListingRow, rate: Decimal) -> dict[str, Any]:
    return {
        "asset": row.asset.value,
        "slug": row.slug,
        "title": row.title,
        "status": row.status.value,
        "price_ton": row.price_ton,
        "price_usd": row.price_usd,
        "ends_at": row.ends_at.isoformat() if row.ends_at else None,
        "sold_at": row.sold_at.isoformat() if row.sold_at else None,
    }


def _comparable(listing: dict[str, Any]) -> dict[str, Any]:
    keep = {key: listing[key] for key in ("asset", "slug", "title", "status", "ends_at", "sold_at")}
    return {
        **keep,
        "price_ton": Decimal(listing["price_ton"]),
        "price_usd": Decimal(listing["price_usd"]),
    }


def test_the_same_seed_gives_the_same_market_and_another_seed_another() -> None:
    first = Market.generate(200, 9, EPOCH).as_json(BASE)
    again = Market.generate(200, 9, EPOCH).as_json(BASE)
    other = Market.generate(200, 10, EPOCH).as_json(BASE)
    assert first == again
    assert first != other


def test_the_market_has_every_view_both_number_lengths_fractions_and_resales() -> None:
    listings = Market.generate(300, 5, EPOCH).as_json(BASE)["listings"]

    views = {(x["asset"], x["status"]) for x in listings}
    assert len(views) == 6
    lengths = {len(x["slug"]) for x in listings if x["asset"] == "number"}
    assert lengths == {7, 11}
    assert any("." in x["price_ton"] for x in listings)
    assert any(x["resale"] for x in listings)


@pytest.mark.parametrize("seed", range(20))
def test_even_a_tiny_market_has_a_listing_in_every_view(seed: int) -> None:
    # An empty view makes a census incomplete (Fragment never serves one); tests use 24.
    listings = Market.generate(6, seed, EPOCH).as_json(BASE)["listings"]
    assert {(x["asset"], x["status"]) for x in listings} == {
        (asset, status)
        for asset in ("number", "username")
        for status in ("auction", "sale", "sold")
    }


async def test_paging_through_every_view_yields_exactly_the_market(
    client: httpx.AsyncClient, simulator: Simulator
) -> None:
    market = (await client.get("/_simulator/market")).json()
    crawled = []
    for asset in Asset:
        for status in ListingStatus:
            crawled.extend(await _crawl_view(client, asset, status))

    rate = Decimal(market["ton_rate"])
    assert len(crawled) == len(market["listings"]) == 300
    expected = sorted(
        (_comparable(x) for x in market["listings"]), key=lambda x: (x["asset"], x["slug"])
    )
    got = sorted(
        (_as_market_json(row, rate) for row in crawled), key=lambda x: (x["asset"], x["slug"])
    )
    assert got == expected


async def test_the_api_needs_the_session_cookie_and_its_hash(client: httpx.AsyncClient) -> None:
    form = {"method": "searchAuctions", "type": "numbers", "filter": "sale"}
    assert (await client.post("/api?hash=abc", data=form)).json() == {"error": "Access denied"}
    page = await client.get("/numbers", params={"filter": "sale"})
    assert "stel_ssid" in page.cookies
    api_hash = parse_listing_page(page.text, "u", BASE, ListingStatus.SALE).init.api_hash  # type: ignore[union-attr]
    assert (await client.post("/api?hash=0000", data=form)).json() == {"error": "Access denied"}
    assert (await client.post(f"/api?hash={api_hash}", data=form)).json()["ok"] is True


async def test_unknown_items_redirect_and_known_ones_render(client: httpx.AsyncClient) -> None:
    gone = await client.get("/number/88800000001")
    assert gone.status_code == 302
    assert gone.headers["location"].startswith("/numbers?query=")
    market = (await client.get("/_simulator/market")).json()
    auction = next(x for x in market["listings"] if x["status"] == "auction" and x["bids"])
    page = await client.get(f"/{auction['asset']}/{auction['slug']}")
    item = parse_item_page(page.text, str(page.url))
    assert item.min_bid_ton == Decimal(auction["price_ton"])
    assert str(item.highest_bid_ton) == auction["highest_bid_ton"]


async def test_a_price_move_through_the_control_endpoint_shows_on_the_page(
    client: httpx.AsyncClient,
) -> None:
    market = (await client.get("/_simulator/market")).json()
    sale = next(x for x in market["listings"] if x["status"] == "sale" and x["asset"] == "number")

    moved = await client.post(
        f"/_simulator/listings/number/{sale['slug']}", json={"price_ton": "123.5"}
    )

    assert moved.status_code == 200
    assert moved.json()["price_ton"] == "123.5"
    rows = await _crawl_view(client, Asset.NUMBER, ListingStatus.SALE)
    assert next(r for r in rows if r.slug == sale["slug"]).price_ton == Decimal("123.5")


async def test_controls_create_withdraw_and_end_auctions(client: httpx.AsyncClient) -> None:
    created = await client.post(
        "/_simulator/listings/username/newname", json={"status": "auction", "price_ton": "10"}
    )
    assert created.status_code == 201
    ended = await client.post("/_simulator/listings/username/newname/end-auction")
    assert ended.json()["status"] == "sold"
    assert (await client.delete("/_simulator/listings/username/newname")).status_code == 200
    assert (await client.get("/username/newname")).status_code == 302
    bad = await client.post("/_simulator/listings/username/x", json={"colour": "red"})
    assert bad.status_code == 400


async def test_faults_rate_limit_truncate_and_markup_change(client: httpx.AsyncClient) -> None:
    await client.post("/_simulator/faults", json={"rate_limit": 2, "retry_after": 3, "truncate": 1})

    limited = [await client.get("/numbers") for _ in range(2)]
    truncated = await client.get("/numbers")
    whole = await client.get("/numbers")

    assert [r.status_code for r in limited] == [429, 429]
    assert limited[0].headers["retry-after"] == "3"
    assert "</html>" not in truncated.text
    assert whole.text.rstrip().endswith("</html>")
    await client.post("/_simulator/faults", json={"markup_change": True})
    assert "icon-ton" not in (await client.get("/numbers")).text
    assert (await client.delete("/_simulator/faults")).json()["markup_change"] is False
    assert (await client.post("/_simulator/faults", json={"rate_limit": -1})).status_code == 400


def test_a_tick_moves_the_market() -> None:
    simulator = _simulator()
    before = simulator.market.as_json(BASE)
    simulator.tick()
    assert simulator.market.as_json(BASE) != before


async def test_pages_carry_the_irregularities_of_real_fragment_markup(
    client: httpx.AsyncClient,
) -> None:
    market = (await client.get("/_simulator/market")).json()
    auction = next(x for x in market["listings"] if x["status"] == "auction" and x["bids"])
    sold = next(x for x in market["listings"] if x["status"] == "sold" and x["sales"] > 1)

    auction_page = (await client.get(f"/{auction['asset']}/{auction['slug']}")).text
    box = auction_page.split('tm-section-bid-info">', 1)[1].split("</table>", 1)[0]
    assert "<tbody><td>" in box
    assert "<tr><td" not in box
    assert 'class="tm-countdown-timer" data-relative="timer"><span class="digit-group">' in (
        auction_page
    )
    assert 'class="short">' in auction_page
    assert '<span class="wide-only"><time' in auction_page
    item = parse_item_page(auction_page, "u")
    assert item.bid_step_pct == Decimal(5)
    assert item.bid_history
    assert all(entry.kind == "bid" for entry in item.bid_history)

    sold_item = parse_item_page((await client.get(f"/{sold['asset']}/{sold['slug']}")).text, "u")
    assert sold_item.owner == sold["owner"]
    assert sold_item.sold_at is not None
    assert sold_item.price_ton == Decimal(sold["price_ton"])


async def test_the_whole_view_answer_is_the_section_content_and_search_views_show_resale(
    client: httpx.AsyncClient,
) -> None:
    first = await client.get("/numbers", params={"filter": "auction"})
    init = parse_listing_page(first.text, str(first.url), BASE, ListingStatus.AUCTION).init
    assert init is not None
    answer = await client.post(
        f"/api?hash={init.api_hash}",
        data={"method": "searchAuctions", "type": "numbers", "filter": "auction", "query": ""},
    )
    data = answer.json()
    assert set(data) == {"ok", "html", "url", "expire", "show_recent_bids"}
    assert "js-search-results" not in data["html"]
    assert "tm-section-header-dropdowns" in data["html"]
    assert parse_search_answer(answer.text, "api", BASE, ListingStatus.AUCTION).rows

    market = (await client.get("/_simulator/market")).json()
    resale = next(x for x in market["listings"] if x["resale"])
    path = "/numbers" if resale["asset"] == "number" else "/"
    search = await client.get(path, params={"query": resale["slug"]})
    assert '<div class="table-cell-value tm-value tm-status-avail">Resale</div>' in search.text
    rows = parse_listing_page(search.text, str(search.url), BASE, None).rows
    assert [(row.slug, row.status) for row in rows if row.slug == resale["slug"]] == [
        (resale["slug"], ListingStatus.AUCTION)
    ]


def test_prices_scatter_around_a_hidden_value_that_no_page_shows() -> None:
    import math
    import statistics

    market = Market.generate(400, 3, EPOCH)
    sold = [listing for listing in market.listings.values() if listing.sales]
    ratios = [
        math.log(float(record.price_ton) / listing.value_ton)
        for listing in sold
        for record in listing.sales
        if record.price_ton is not None
    ]
    assert abs(statistics.median(ratios)) < 0.1  # sales centre on the value...
    assert 0.1 < statistics.pstdev(ratios) < 0.4  # ...and scatter around it
    numbers = [x for x in market.listings.values() if x.asset is Asset.NUMBER]
    repdigits = [x.value_ton for x in numbers if len(set(x.slug[3:])) <= 2]
    ordinary = [x.value_ton for x in numbers if len(set(x.slug[3:])) >= 7]
    if repdigits:  # the traits carry premiums
        assert statistics.median(repdigits) > statistics.median(ordinary)
    shown = Market.as_json(market, BASE)
    assert all("value" not in key for row in shown["listings"] for key in row)
