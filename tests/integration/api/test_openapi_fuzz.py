"""Property-based run over the OpenAPI document (schemathesis): no input makes the server fail.

Valid and invalid inputs are generated for every documented operation, against the real
database with a seeded market; every response must be something other than a 5xx and must
match the documented response schema.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from pymongo import MongoClient
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import response_schema_conformance

from fragmenty_api.main import create_app
from fragmenty_shared.settings import Settings
from fragmenty_shared.storage import make_mongo_client
from tests.integration.api.conftest import api_settings, sample_market
from tests.integration.api.market_seed import seed_market

pytestmark = pytest.mark.slow

EXAMPLES_PER_OPERATION = 25


async def _seed(settings: Settings) -> None:
    client = make_mongo_client(settings.mongodb_url)
    try:
        await seed_market(client[settings.mongodb_database], sample_market())
    finally:
        await client.close()


@pytest.mark.parametrize(
    "mode", [schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE]
)
def test_no_generated_request_causes_a_server_error(
    settings: Settings, mode: schemathesis.GenerationMode
) -> None:
    asyncio.run(_seed(settings))
    app = create_app(api_settings(settings, expensive_requests_per_minute=100_000))
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result
        operations.append(result.ok())
    assert {operation.path for operation in operations} >= {
        "/api/v1/listings",
        "/api/v1/listings/{asset}/{slug}",
        "/api/v1/events",
        "/api/v1/stats/market",
        "/api/v1/export.csv",
        "/api/auctions",
    }
    try:
        for operation in operations:

            @given(case=operation.as_strategy(generation_mode=mode))
            @hypothesis_settings(
                max_examples=EXAMPLES_PER_OPERATION,
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            def call(case: Any) -> None:
                case.call_and_validate(checks=[not_a_server_error, response_schema_conformance])

            call()
    finally:
        client: MongoClient[dict[str, Any]]
        with MongoClient(settings.mongodb_url) as client:
            client.drop_database(settings.mongodb_database)
