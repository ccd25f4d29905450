"""Removing what a test or benchmark declared on the shared RabbitMQ.

Quorum queues are durable: they outlive the test that declared them, and hundreds of leftovers
once made the shared RabbitMQ refuse AMQP connections. Every integration and e2e test that has a
namespace gets it deleted afterwards (``NamespaceSweeper``, used by an autouse fixture in
``tests/conftest.py``), whether or not it used the ``broker`` fixture or ran services of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import warnings
from collections.abc import Coroutine
from concurrent.futures import Future
from typing import Any, TypeVar

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractRobustConnection
from faststream.rabbit import RabbitBroker

from fragmenty_shared.topology import Topology

# Durable queues some tests declare themselves, besides the topology's (name after the namespace).
TEST_QUEUE_SUFFIXES = ("test-tap",)

T = TypeVar("T")


def own_queue_name(topology: Topology, suffix: str) -> str:
    return f"{topology.namespace}.{suffix}"


async def delete_topology(channel: AbstractChannel, topology: Topology) -> None:
    """Delete every durable queue and exchange of ``topology`` (absent ones are no error)."""
    if not topology.namespace:  # the deployment's own names: never a test's to delete
        raise ValueError("refusing to delete the topology without a namespace")
    names = [*topology.durable_queue_names()]
    names += [own_queue_name(topology, suffix) for suffix in TEST_QUEUE_SUFFIXES]
    for name in names:
        await channel.queue_delete(name, if_unused=False, if_empty=False)
    for exchange in topology.exchange_names():
        await channel.exchange_delete(exchange)


async def delete_namespace_queues(rabbit: RabbitBroker, topology: Topology) -> None:
    """``delete_topology`` over a connected broker's connection (benchmarks)."""
    channel = await rabbit._connection.channel()  # type: ignore[union-attr]
    try:
        await delete_topology(channel, topology)
    finally:
        await channel.close()


class NamespaceSweeper:
    """Deletes test namespaces on the shared RabbitMQ from a thread of its own.

    Its own event loop and one connection serve the whole session, so a sweep costs a few
    round trips, works after sync and async tests alike, and never touches a test's loop. The
    connection is opened at the first sweep, so runs without integration tests never open one.
    """

    def __init__(self, rabbitmq_url: str) -> None:
        self._url = rabbitmq_url
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="namespace-sweeper", daemon=True
        )
        self._thread.start()
        self._connection: AbstractRobustConnection | None = None

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> Future[T]:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop)

    async def _sweep(self, topology: Topology) -> bool:
        if self._connection is None:
            try:
                self._connection = await aio_pika.connect_robust(self._url)
            except OSError:  # connection refused, AMQP handshake failed: nothing to sweep there
                return False
        channel = await self._connection.channel()
        try:
            await delete_topology(channel, topology)
        finally:
            await channel.close()
        return True

    def sweep(self, topology: Topology, timeout_s: float = 30.0) -> None:
        """Delete ``topology``'s durable queues and exchanges; a warning, not an error, when
        the shared RabbitMQ cannot be reached (a test that ran without it declared nothing)."""
        if not self._run(self._sweep(topology)).result(timeout_s):
            warnings.warn(
                f"RabbitMQ at {self._url} unreachable: namespace {topology.namespace} not swept",
                stacklevel=2,
            )

    async def _close(self) -> None:
        if self._connection is not None:
            await self._connection.close()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._run(self._close()).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()
