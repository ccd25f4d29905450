"""Two worker processes on one port: sockets spread over both, each worker gets every event,
the per-address limit and /metrics cover the machine, and SIGTERM says goodbye from both."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from faststream.rabbit import RabbitBroker
from pymongo.asynchronous.database import AsyncDatabase
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from fragmenty_shared.settings import Settings
from fragmenty_shared.topology import Topology
from tests.support.private_servers import free_port
from tests.support.processes import ServiceProcess, service_environment
from tests.unit.notifier.factories import make_event

from .conftest import frames_until, publish, read_until_closed, subscribe

pytestmark = pytest.mark.slow

PER_ADDRESS = 12


@contextlib.asynccontextmanager
async def two_workers(
    settings: Settings, log_dir: Path
) -> AsyncIterator[tuple[ServiceProcess, int]]:
    port = free_port()
    env = service_environment(
        settings.model_copy(update={"notifier_port": port}),
        FRAGMENTY_NOTIFIER_WORKERS="2",
        FRAGMENTY_NOTIFIER_MAX_CONNECTIONS_PER_CLIENT=str(PER_ADDRESS),
    )
    notifier = ServiceProcess("notifier-workers", "fragmenty_notifier", (), env, log_dir)
    notifier.start()
    try:
        await notifier.wait_ready(f"http://127.0.0.1:{port}/readyz", timeout_s=90)
        yield notifier, port
    finally:
        notifier.stop()


def worker_of(client: ClientConnection) -> str:
    """The worker that took the socket, as its handshake said."""
    assert client.response is not None
    return client.response.headers["x-fragmenty-worker"]


async def test_two_workers_share_the_port_the_events_and_the_limits(
    settings: Settings,
    broker: RabbitBroker,
    topology: Topology,
    mongo_db: AsyncDatabase[dict[str, Any]],
    tmp_path: Path,
) -> None:
    async with two_workers(settings, tmp_path) as (notifier, port):
        # Ready means every worker consumes its queue (/readyz answers for all of them).
        clients: list[ClientConnection] = []
        try:
            for _ in range(PER_ADDRESS):
                clients.append(await connect(f"ws://127.0.0.1:{port}/ws"))
            workers = [worker_of(client) for client in clients]
            assert set(workers) == {"0", "1"}, workers  # the kernel spread them
            # The limit holds for the machine: whichever worker takes the next one refuses it.
            for _ in range(6):
                with pytest.raises(InvalidStatus) as refused:
                    await connect(f"ws://127.0.0.1:{port}/ws")
                assert refused.value.response.status_code == 429

            for client in clients:
                await subscribe(client, "all")
            event = make_event("88800007001")
            await publish(broker, topology, event)
            for client in clients:  # each worker consumes a queue of its own
                (frame,) = await frames_until(client, 1)
                assert frame["event"]["event_id"] == event.event_id

            async with httpx.AsyncClient(timeout=5) as http:
                # Whichever worker answers asks the other for fresh figures first.
                metrics = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
                ready = (await http.get(f"http://127.0.0.1:{port}/readyz")).json()
            shown = [
                line
                for line in metrics.splitlines()
                if "_connections{" in line or "out_total{" in line
            ]
            assert f'fragmenty_notifier_connections{{endpoint="ws"}} {PER_ADDRESS}.0' in shown, (
                shown
            )
            assert 'fragmenty_build_info{service="notifier",version="0.1.0"} 1.0' in metrics
            out = 'fragmenty_notifier_events_out_total{source="live"}'
            assert f"{out} {float(PER_ADDRESS)}" in metrics  # one event to each, on both workers
            assert ready["checks"]["workers"] == "ok"

            assert notifier.process is not None
            notifier.process.terminate()
            for client in clients:
                await read_until_closed(client, 30)
                assert client.close_code == 1001
            assert await asyncio.to_thread(notifier.process.wait, 30) == 0
        finally:
            for client in clients:
                await client.close()
