"""Input edge cases: no echo of a tampered cursor, exact price bounds, no future statistics, and
an OpenAPI document that says what the server accepts (the schemathesis run checks the rest)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from fragmenty_api.cursor import CURSOR_PATTERN
from tests.integration.api.conftest import ClientFactory
from tests.integration.api.market_seed import SeedListing

SCRIPT = "<script>alert(1)</script>"


def forged_cursor(payload: Any) -> str:
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    "payload",
    [
        [SCRIPT, [1, "number:1"]],  # another "sort" that is markup
        ["price_asc", [SCRIPT, "number:1"]],  # the right sort, a key of the wrong type
        ["price_asc", [1, SCRIPT * 20]],  # a key too long
    ],
)
async def test_a_tampered_cursor_is_refused_without_echoing_any_of_it(
    market: list[SeedListing], make_client: ClientFactory, payload: Any
) -> None:
    async with make_client() as client:
        response = await client.get("/api/v1/listings", params={"cursor": forged_cursor(payload)})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "cursor"]
    assert "script" not in response.text
    assert "alert" not in response.text


@pytest.mark.parametrize(
    ("params", "includes_the_cheapest"),
    [
        # The cheapest listing costs 10 TON, 32.50 USD.
        ({"max_price": "32.5", "currency": "usd"}, True),
        ({"max_price": "32.499", "currency": "usd"}, False),
        ({"min_price": "32.491", "currency": "usd"}, True),
        ({"min_price": "32.501", "currency": "usd"}, False),
        ({"min_price": "9.999999999"}, True),
        ({"min_price": "10.000000001"}, False),
        ({"min_price": "32.501", "max_price": "32.509", "currency": "usd"}, False),
    ],
)
async def test_price_bounds_finer_than_the_currency_are_exact(
    market: list[SeedListing],
    make_client: ClientFactory,
    params: dict[str, str],
    includes_the_cheapest: bool,
) -> None:
    async with make_client() as client:
        response = await client.get("/api/v1/listings", params=params)
    assert response.status_code == 200, response.text
    prices = [item["price_usd"] for item in response.json()["items"]]
    assert ("32.50" in prices) is includes_the_cheapest


async def test_market_stats_have_no_days_after_today(
    market: list[SeedListing], make_client: ClientFactory
) -> None:
    today = datetime.now(UTC).date()
    async with make_client() as client:
        through_next_week = await client.get(
            "/api/v1/stats/market",
            params={
                "asset": "number",
                "from": str(today - timedelta(days=1)),
                "to": str(today + timedelta(days=7)),
            },
        )
        only_future = await client.get(
            "/api/v1/stats/market",
            params={"from": str(today + timedelta(days=1)), "to": "2100-12-31"},
        )
    assert through_next_week.status_code == 200
    assert [day["day"] for day in through_next_week.json()["days"]] == [
        str(today - timedelta(days=1)),
        str(today),
    ]
    assert only_future.status_code == 422  # more than 366 days: refused, as any such range
    async with make_client() as client:
        next_week = await client.get(
            "/api/v1/stats/market",
            params={"from": str(today + timedelta(days=1)), "to": str(today + timedelta(days=7))},
        )
    assert next_week.status_code == 200
    assert next_week.json()["days"] == []


def parameter_schema(spec: dict[str, Any], path: str, name: str) -> dict[str, Any]:
    for parameter in spec["paths"][path]["get"]["parameters"]:
        if parameter["name"] == name:
            schema: dict[str, Any] = parameter["schema"]
            return schema
    raise AssertionError(f"{path} has no parameter {name}")


def string_pattern(schema: dict[str, Any]) -> str:
    """The pattern a string value must match (on the string branch or the whole schema)."""
    for branch in schema.get("anyOf", [schema]):
        if branch.get("type") == "string" and "pattern" in branch:
            return str(branch["pattern"])
    return str(schema["pattern"])


async def test_the_openapi_document_states_the_formats_the_server_enforces(
    make_client: ClientFactory,
) -> None:
    async with make_client() as client:
        spec = (await client.get("/openapi.json")).json()
    assert string_pattern(parameter_schema(spec, "/api/v1/listings", "cursor")) == CURSOR_PATTERN
    for name in ("min_price", "max_price"):
        for path in ("/api/v1/listings", "/api/v1/export.csv"):
            assert string_pattern(parameter_schema(spec, path, name)).startswith("^[0-9]{1,12}")
    for name in ("from", "to"):
        schema = parameter_schema(spec, "/api/v1/stats/market", name)
        assert string_pattern(schema) == r"^(20[2-9][0-9]|2100)-[0-9]{2}-[0-9]{2}$"
