"""Detail, events, stats, CSV export, the original /api/auctions, safety and operations."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import httpx
import pytest

from fragmenty_api.main import create_app
from fragmenty_api.settings import ApiSettings
from fragmenty_shared.contracts import Asset
from tests.integration.api.conftest import NOW, ClientFactory
from tests.integration.api.market_seed import SeedListing


def by_id(market: list[SeedListing], key: str) -> SeedListing:
    return next(listing for listing in market if listing.id == key)


async def test_listing_detail_has_state_history_events_and_item_page_tables(
    market: list[SeedListing], make_client: ClientFactory
) -> None:
    async with make_client() as client:
        response = await client.get("/api/v1/listings/number/88800000123")
    assert response.status_code == 200
    body = response.json()
    assert body["listing"]["price_ton"] == "900"
    assert [point["price_ton"] for point in body["history"]] == ["1500", "1100", "900"]
    assert [point["type"] for point in body["history"]] == [
        "listed",
        "price_changed",
        "price_changed",
    ]
    assert [event["type"] for event in body["events"]] == [
        "listed",
        "price_changed",
        "price_changed",
    ]
    assert body["events"][1]["old"]["price_ton"] == "1500"
    assert body["owner"] == "EQD_owner_wallet"
    assert [entry["price_ton"] for entry in body["ownership_history"]] == ["700", None]
    assert body["bid_history"] == []


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/api/v1/listings/number/88899999999", 404),
        ("/api/v1/listings/gift/abc", 422),
        ("/api/v1/listings/number/BAD%20SLUG", 422),
    ],
)
async def test_listing_detail_refuses_unknown_or_malformed(
    market: list[SeedListing], make_client: ClientFactory, path: str, status: int
) -> None:
    async with make_client() as client:
        response = await client.get(path)
    assert response.status_code == status


async def test_event_feed_follows_since_without_gaps_and_filters(
    market: list[SeedListing], make_client: ClientFactory
) -> None:
    every_event = sorted(event.event_id for listing in market for event in listing.events())
    async with make_client() as client:
        latest = (await client.get("/api/v1/events", params={"limit": 3})).json()
        read: list[str] = []
        since = "0"
        while True:
            page = (await client.get("/api/v1/events", params={"since": since, "limit": 4})).json()
            if not page["items"]:
                break
            read.extend(event["event_id"] for event in page["items"])
            since = page["next_since"]
        sold = (await client.get("/api/v1/events", params={"type": "sold", "since": "0"})).json()
        usernames = (
            await client.get("/api/v1/events", params={"asset": "username", "since": "0"})
        ).json()
        bad = await client.get("/api/v1/events", params={"since": "no spaces allowed"})
        an_event_id = await client.get("/api/v1/events", params={"since": every_event[0]})
        newest = latest["next_since"]
        at_the_end = await client.get("/api/v1/events", params={"since": newest})
        ahead = await client.get("/api/v1/events", params={"since": newest + 1})
    assert [event["event_id"] for event in latest["items"]] == every_event[-3:]
    assert read == every_event
    assert [event["seq"] for event in latest["items"]] == [newest - 2, newest - 1, newest]
    assert at_the_end.json() == {"items": [], "next_since": newest}  # nothing new yet
    assert ahead.status_code == 422  # a position no event ever had
    assert "ahead of the newest stored event" in ahead.text
    assert an_event_id.status_code == 422  # an event id is not a position
    assert {event["slug"] for event in sold["items"]} == {"88855554444", "crypto"}
    assert {event["asset"] for event in usernames["items"]} == {"username"}
    assert bad.status_code == 422


async def test_market_stats_floor_median_count_and_sold_volume_per_day(
    market: list[SeedListing], make_client: ClientFactory
) -> None:
    today = NOW.date()
    async with make_client() as client:
        response = await client.get(
            "/api/v1/stats/market",
            params={"asset": "username", "from": str(today - timedelta(days=3)), "to": str(today)},
        )
    days = {day["day"]: day for day in response.json()["days"]}
    assert response.status_code == 200
    three_days_ago = days[str(today - timedelta(days=3))]
    # crypto sold that day for 15000; borisov (40) was listed, crypto no longer.
    assert three_days_ago["sold_count"] == 1
    assert three_days_ago["volume_ton"] == "15000"
    assert three_days_ago["volume_usd"] == "48750.00"
    assert three_days_ago["listed_count"] == 1
    assert three_days_ago["floor_ton"] == "40"
    # Today: borisov 40, boris 75, evil 10 are listed.
    assert days[str(today)]["listed_count"] == 3
    assert days[str(today)]["floor_ton"] == "10"
    assert days[str(today)]["median_ton"] == "40"


async def test_market_stats_median_of_an_even_count_is_exact(
    market: list[SeedListing], make_client: ClientFactory
) -> None:
    today = NOW.date()
    async with make_client() as client:
        response = await client.get(
            "/api/v1/stats/market",
            params={
                "asset": "number",
                "from": str(today - timedelta(days=2)),
                "to": str(today - timedelta(days=2)),
            },
        )
    (day,) = response.json()["days"]
    # Listed two days ago: 7777 (5000), 12347777 (1200.5), 0123 (1100), 0999 (300),
    # 8888888 (250000), 55554444 (1000), 11112222 (450: delisted only yesterday).
    assert day["listed_count"] == 7
    assert day["floor_ton"] == "300"
    assert day["median_ton"] == "1100"


@pytest.mark.parametrize(
    "params",
    [
        {"from": "2026-01-10", "to": "2026-01-01"},
        {"from": "2024-01-01", "to": "2026-01-01"},
        {"to": "yesterday"},
        {"to": "0001-01-01"},
    ],
)
async def test_market_stats_refuses_bad_ranges(
    market: list[SeedListing], make_client: ClientFactory, params: dict[str, str]
) -> None:
    async with make_client() as client:
        response = await client.get("/api/v1/stats/market", params=params)
    assert response.status_code == 422


async def test_csv_export_streams_the_same_rows_as_the_query(
    market: list[SeedListing], make_client: ClientFactory
) -> None:
    params = {"asset": "number", "sort": "price_desc"}
    async with make_client() as client:
        listed = (await client.get("/api/v1/listings", params=params)).json()["items"]
        response = await client.get("/api/v1/export.csv", params=params)
        limited = await client.get("/api/v1/export.csv", params={**params, "limit": 2})
        refused = await client.get("/api/v1/export.csv", params={"sort": "nope"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [row["id"] for row in rows] == [item["id"] for item in listed]
    assert rows[0]["price_ton"] == listed[0]["price_ton"]
    # Spreadsheets would run '+888 ...' as a formula: the title is quoted.
    assert rows[0]["title"] == "'" + listed[0]["title"]
    assert len(list(csv.DictReader(io.StringIO(limited.text)))) == 2
    assert refused.status_code == 422


async def test_export_and_stats_are_rate_limited_per_client(
    market: list[SeedListing], make_client: ClientFactory
) -> None:
    async with make_client(expensive_requests_per_minute=2) as client:
        statuses = [(await client.get("/api/v1/export.csv")).status_code for _ in range(2)]
        limited = await client.get("/api/v1/stats/market")
        listings = await client.get("/api/v1/listings")
        metrics = (await client.get("/metrics")).text
    assert statuses == [200, 200]
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) >= 1
    assert listings.status_code == 200
    assert 'fragmenty_api_rate_limited_total{route="/api/v1/stats/market"} 1.0' in metrics


async def test_original_api_auctions_contract(
    market: list[SeedListing], make_client: ClientFactory
) -> None:
    async with make_client() as client:
        first = await client.get("/api/auctions")
        paged = await client.get("/api/auctions", params={"page": 2, "pageSize": 2})
        bad = await client.get("/api/auctions", params={"pageSize": 0})
    assert first.status_code == 200
    rows = first.json()
    assert isinstance(rows, list)
    numbers = [item for item in market if item.asset is Asset.NUMBER and item.delisted_at is None]
    assert len(rows) == len(numbers)
    assert set(rows[0]) == {
        "_id",
        "id",
        "auctionEndTimestamp",
        "memorabilityScore",
        "minimumBid",
        "minimumBidInUSD",
        "number",
    }
    ends = [row["auctionEndTimestamp"] for row in rows]
    assert ends == sorted(ends, reverse=True)
    repdigit = next(row for row in rows if row["id"] == "8888888")
    ends_at = by_id(market, "number:8888888").ends_at
    assert ends_at is not None
    assert repdigit == {
        "_id": "number:8888888",
        "id": "8888888",
        "auctionEndTimestamp": ends_at.isoformat().replace("+00:00", "Z"),
        "memorabilityScore": 1.0,
        "minimumBid": 250000,
        "minimumBidInUSD": 812500,
        "number": "+888 8 888",
    }
    assert paged.json() == rows[2:4]
    assert bad.status_code == 422


async def test_security_headers_cors_allowlist_and_error_bodies(
    market: list[SeedListing], make_client: ClientFactory
) -> None:
    async with make_client(cors_allow_origins=["https://tools.example"]) as client:
        allowed = await client.get("/api/v1/listings", headers={"Origin": "https://tools.example"})
        other = await client.get("/api/v1/listings", headers={"Origin": "https://evil.example"})
        missing = await client.get("/no/such/page")
    headers = allowed.headers
    assert headers["access-control-allow-origin"] == "https://tools.example"
    assert "access-control-allow-origin" not in other.headers
    csp = headers["content-security-policy"]
    assert "script-src 'self'" in csp
    assert "unsafe-eval" not in csp
    assert "ws://127.0.0.1:8001" in csp
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    assert missing.status_code == 404
    assert missing.json() == {"detail": "Not Found"}


async def test_scraped_text_is_escaped_in_pages(
    market: list[SeedListing], make_client: ClientFactory
) -> None:
    async with make_client() as client:
        page = await client.get("/listing/username/evil")
    assert page.status_code == 200
    assert "<script>alert(1)</script>" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text


async def test_health_readiness_and_metrics_by_route_template(
    market: list[SeedListing], make_client: ClientFactory
) -> None:
    async with make_client() as client:
        await client.get("/api/v1/listings/number/88800000123")
        await client.get("/api/v1/listings/number/88899999999")
        health = await client.get("/healthz")
        ready = await client.get("/readyz")
        metrics = (await client.get("/metrics")).text
    assert health.json() == {"status": "ok"}
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok", "snapshot": "ok"}
    template = 'route="/api/v1/listings/{asset}/{slug}"'
    assert f'fragmenty_api_requests_total{{method="GET",{template},status="200"}} 1.0' in metrics
    assert f'fragmenty_api_requests_total{{method="GET",{template},status="404"}} 1.0' in metrics
    assert "fragmenty_api_request_seconds_bucket" in metrics
    assert "88800000123" not in metrics


async def test_readiness_fails_when_the_database_is_unreachable() -> None:
    app = create_app(ApiSettings(mongodb_url="mongodb://127.0.0.1:9/?serverSelectionTimeoutMS=300"))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client,
    ):
        ready = await client.get("/readyz")
        health = await client.get("/healthz")
    assert ready.status_code == 503
    assert ready.json()["checks"]["snapshot"] != "ok"
    assert health.status_code == 200
