"""Fixtures every test can use.

Integration tests talk to the real RabbitMQ and the real MongoDB-compatible server named by
``FRAGMENTY_RABBITMQ_URL`` and ``FRAGMENTY_MONGODB_URL`` (``make test`` starts local ones). Each
test gets its own topology namespace and database, so tests never see each other's data.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from faststream.rabbit import RabbitBroker
from pymongo.asynchronous.database import AsyncDatabase

from fragmenty_shared.broker import make_broker
from fragmenty_shared.settings import Settings
from fragmenty_shared.storage import make_mongo_client
from fragmenty_shared.topology import Topology
from tests.support.broker_cleanup import NamespaceSweeper

TESTS_DIR = Path(__file__).parent
ARTIFACTS_DIR = TESTS_DIR.parent / "artifacts"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests under integration/ and e2e/ carry their marker without having to say so."""
    for item in items:
        parts = Path(str(item.fspath)).relative_to(TESTS_DIR).parts
        if parts[0] == "integration":
            item.add_marker(pytest.mark.integration)
        elif parts[0] == "e2e":
            item.add_marker(pytest.mark.e2e)
            item.add_marker(pytest.mark.integration)


@pytest.fixture
def test_id() -> str:
    return uuid.uuid4().hex[:10]


@pytest.fixture
def settings(test_id: str) -> Settings:
    """Settings from the environment, with a namespace and database of this test's own."""
    return Settings(namespace=f"t{test_id}", mongodb_database=f"test_{test_id}")


@pytest.fixture
def topology(settings: Settings) -> Topology:
    return Topology(settings.namespace)


@pytest.fixture
async def mongo_db(settings: Settings) -> AsyncIterator[AsyncDatabase[dict[str, Any]]]:
    """This test's database on the real server; dropped afterwards."""
    client = make_mongo_client(settings.mongodb_url)
    try:
        yield client[settings.mongodb_database]
    finally:
        await client.drop_database(settings.mongodb_database)
        await client.close()


@pytest.fixture
async def broker(settings: Settings) -> AsyncIterator[RabbitBroker]:
    """A connected broker on the real RabbitMQ (this test's queues go afterwards, see below)."""
    rabbit = make_broker(settings)
    await rabbit.connect()
    try:
        yield rabbit
    finally:
        await rabbit.stop()


@pytest.fixture(scope="session")
def namespace_sweeper() -> Iterator[NamespaceSweeper]:
    sweeper = NamespaceSweeper(Settings().rabbitmq_url)
    try:
        yield sweeper
    finally:
        sweeper.close()


@pytest.fixture(autouse=True)
def _namespace_deleted_afterwards(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every integration or e2e test's durable queues and exchanges are deleted after it.

    Whatever declared them (the ``broker`` fixture, a service in the test's loop, a service in a
    subprocess), they are named after the test's namespace. Being autouse, this is torn down
    after the test's other fixtures, so the services are stopped by then. The sweep goes to the
    shared RabbitMQ of the environment; a test's private server goes away with its queues.
    """
    if (
        "settings" not in request.fixturenames
        or request.node.get_closest_marker("integration") is None
    ):
        yield
        return
    namespace = request.getfixturevalue("settings").namespace
    sweeper: NamespaceSweeper = request.getfixturevalue("namespace_sweeper")
    yield
    sweeper.sweep(Topology(namespace))


@pytest.fixture
def artifacts_dir() -> Path:
    """Where tests leave files for people to look at (screenshots); kept after the run."""
    ARTIFACTS_DIR.mkdir(exist_ok=True)
    return ARTIFACTS_DIR
