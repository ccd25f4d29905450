"""Protection: Origin allowlist, frame size, malformed input, limits, slow clients, shutdown."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from faststream.rabbit import RabbitBroker
from pymongo.asynchronous.database import AsyncDatabase
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from fragmenty_notifier.outbox import DirectOutbox
from fragmenty_shared.settings import Settings
from fragmenty_shared.topology import Topology

from .conftest import (
    RunningNotifier,
    big_events,
    frames_until,
    next_frame,
    notifier_settings,
    open_client,
    publish,
    read_until_closed,
    running_notifier,
    slow_and_fast_clients,
    subscribe,
)


async def test_a_disallowed_origin_is_refused_with_403(notifier: RunningNotifier) -> None:
    with pytest.raises(InvalidStatus) as refused:
        await connect(notifier.url(), origin="https://evil.example")  # type: ignore[arg-type]
    assert refused.value.response.status_code == 403
    # The allowed origin and a script without any Origin header get in.
    async with open_client(notifier) as client:
        await subscribe(client, "s1")
    async with connect(notifier.url()) as script:
        await subscribe(script, "s1")
    async with httpx.AsyncClient() as http:
        metrics = (await http.get(f"{notifier.http}/metrics")).text
    assert 'fragmenty_notifier_handshakes_refused_total{reason="origin"} 1.0' in metrics


async def test_an_oversized_frame_closes_the_connection_with_1009(
    notifier: RunningNotifier,
) -> None:
    async with open_client(notifier, max_size=None) as client:
        await subscribe(client, "s1")
        big = json.dumps({"action": "ping", "pad": "x" * (16 * 1024)})
        await client.send(big)
        await read_until_closed(client)
        assert client.close_code == 1009


async def test_malformed_frames_get_errors_and_the_connection_stays_open(
    notifier: RunningNotifier,
) -> None:
    async with open_client(notifier) as client:
        for bad in ["{", '{"action": "fly"}', '{"action": "unsubscribe", "id": "nope"}']:
            await client.send(bad)
            frame = await next_frame(client)
            assert frame["type"] == "error", frame
        await client.send(b"\x00binary")
        assert (await next_frame(client))["type"] == "error"
        await client.send(
            json.dumps({"action": "subscribe", "id": "p", "filter": {"pattern": "!!"}})
        )
        error = await next_frame(client)
        assert error["type"] == "error"
        assert error["id"] == "p"
        assert "pattern" in error["message"]
        await client.send('{"action": "ping"}')
        assert await next_frame(client) == {"type": "pong"}


async def test_a_client_that_keeps_sending_garbage_is_closed_1008(
    settings: Settings, broker: RabbitBroker, mongo_db: AsyncDatabase[dict[str, Any]]
) -> None:
    limited = notifier_settings(settings, notifier_max_client_errors=3)
    async with running_notifier(limited) as notifier, open_client(notifier) as client:
        for _ in range(4):
            await client.send("garbage")
        await read_until_closed(client)
        assert client.close_code == 1008


async def test_subscription_and_connection_limits(
    settings: Settings, broker: RabbitBroker, mongo_db: AsyncDatabase[dict[str, Any]]
) -> None:
    limited = notifier_settings(
        settings, notifier_max_subscriptions=2, notifier_max_connections_per_client=2
    )
    async with running_notifier(limited) as notifier:
        async with open_client(notifier) as first, open_client(notifier) as second:
            await subscribe(first, "a")
            await subscribe(first, "b")
            await subscribe(first, "a", {"assets": ["number"]})  # replacing one is fine
            await first.send(json.dumps({"action": "subscribe", "id": "c", "filter": {}}))
            refused = await next_frame(first)
            assert refused["type"] == "error"
            assert "at most 2" in refused["message"]
            with pytest.raises(InvalidStatus) as third:
                await open_client(notifier)
            assert third.value.response.status_code == 429
            await subscribe(second, "x")
        # Once those two are gone, the address may connect again.
        async with open_client(notifier) as again:
            await subscribe(again, "y")


async def test_a_slow_client_is_dropped_with_1013_without_delaying_others(
    settings: Settings,
    broker: RabbitBroker,
    topology: Topology,
    mongo_db: AsyncDatabase[dict[str, Any]],
) -> None:
    limited = notifier_settings(settings, notifier_send_buffer_bytes=512 * 1024)
    events = big_events("8880003")
    async with (
        running_notifier(limited) as notifier,
        slow_and_fast_clients(notifier) as (slow, fast),
    ):
        reading = asyncio.create_task(frames_until(fast, len(events), wait_s=60))
        for event in events:
            await publish(broker, topology, event)
        # The fast client gets every event while the slow one reads nothing at all: had
        # the fan-out waited for the slow socket, these could not all arrive.
        frames = await reading
        assert [f["event"]["event_id"] for f in frames] == [e.event_id for e in events]
        # The slow client now reads what was already on its way, then the close frame.
        received = await read_until_closed(slow, 30)
        assert slow.close_code == 1013
        assert received < len(events)
    metrics = notifier.notifier.metrics.registry.get_sample_value(
        "fragmenty_notifier_clients_dropped_total", {"reason": "slow"}
    )
    assert metrics == 1.0


async def test_shutdown_says_goodbye_with_1001(
    settings: Settings, broker: RabbitBroker, mongo_db: AsyncDatabase[dict[str, Any]]
) -> None:
    async with running_notifier(notifier_settings(settings)) as notifier:
        client = await open_client(notifier)
        await subscribe(client, "s1")
        notifier.server.should_exit = True
        await read_until_closed(client)
        assert client.close_code == 1001


async def test_health_readiness_and_metrics(notifier: RunningNotifier) -> None:
    async with httpx.AsyncClient(base_url=notifier.http) as http:
        assert (await http.get("/healthz")).json() == {"status": "ok"}
        ready = await http.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"] == {"broker": "ok", "database": "ok"}
        async with open_client(notifier) as client:
            await subscribe(client, "s1")
            text = (await http.get("/metrics")).text
            # The fast way out (frames written straight to uvicorn's transport) is in use.
            (connection,) = notifier.notifier.hub.connections
            assert isinstance(connection.outbox, DirectOutbox)
        assert 'fragmenty_notifier_connections{endpoint="ws"} 1.0' in text
        assert "fragmenty_notifier_subscriptions 1.0" in text
        assert "fragmenty_notifier_fanout_latency_seconds_bucket" in text


async def test_a_client_that_never_answers_keepalive_pings_is_cut_off(
    settings: Settings, broker: RabbitBroker, mongo_db: AsyncDatabase[dict[str, Any]]
) -> None:
    quick = notifier_settings(settings, notifier_ping_interval_s=0.3, notifier_ping_timeout_s=0.3)
    async with running_notifier(quick) as notifier:
        # A bare socket: it completes the handshake, then never answers a ping.
        reader, writer = await asyncio.open_connection("127.0.0.1", notifier.port)
        writer.write(
            b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101")
        async with asyncio.timeout(10):
            while await reader.read(4096):  # pings, then the end of the connection
                pass
        writer.close()
        assert len(notifier.notifier.hub) == 0


async def test_the_per_address_limit_counts_the_forwarded_client(
    settings: Settings, broker: RabbitBroker, mongo_db: AsyncDatabase[dict[str, Any]]
) -> None:
    # Behind a trusted proxy (here: this machine), each forwarded client has a limit of its own.
    limited = notifier_settings(settings, notifier_max_connections_per_client=1)
    async with running_notifier(limited) as notifier:
        first = open_client(notifier, additional_headers={"X-Forwarded-For": "203.0.113.1"})
        second = open_client(notifier, additional_headers={"X-Forwarded-For": "203.0.113.2"})
        async with first as one, second as two:
            await subscribe(one, "a")
            await subscribe(two, "b")
            with pytest.raises(InvalidStatus) as refused:
                await open_client(notifier, additional_headers={"X-Forwarded-For": "203.0.113.1"})
            assert refused.value.response.status_code == 429
