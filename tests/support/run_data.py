"""Removing a benchmark run's own namespace and database from the shared RabbitMQ and server."""

from __future__ import annotations

from fragmenty_shared.broker import make_broker
from fragmenty_shared.settings import Settings
from fragmenty_shared.storage import make_mongo_client
from fragmenty_shared.topology import Topology
from tests.support.broker_cleanup import delete_namespace_queues


async def remove_run_data(settings: Settings) -> None:
    """Delete the queues and exchanges of ``settings.namespace`` (quorum queues outlive the
    run) and drop ``settings.mongodb_database``."""
    broker = make_broker(Settings(rabbitmq_url=settings.rabbitmq_url))
    await broker.connect()
    try:
        await delete_namespace_queues(broker, Topology(settings.namespace))
    finally:
        await broker.stop()
    client = make_mongo_client(settings.mongodb_url)
    try:
        await client.drop_database(settings.mongodb_database)
    finally:
        await client.close()
