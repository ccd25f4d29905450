"""Every service's HTTP server refuses too large a request head with 431 and stays usable.

Raw sockets, so the requests are exactly what an abusive client sends: too many header fields,
one complete header far over the size limit, and a header that never ends (the server must stop
reading it at the limit instead of buffering all of it). The ops server is what ingest and the
crawler run (``serve_ops``); the api and the notifier run their own apps under the same helper.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import uvicorn
from faststream.rabbit import RabbitBroker
from prometheus_client import CollectorRegistry

from fragmenty_api.__main__ import api_server_config
from fragmenty_shared.http_server import EmbeddedServer
from fragmenty_shared.ops import serve_ops
from fragmenty_shared.settings import Settings
from tests.integration.api.conftest import api_settings
from tests.integration.notifier.conftest import notifier_settings, running_notifier
from tests.support.private_servers import free_port

MAX_HEADER_BYTES = 4_096
MAX_HEADERS = 20


LIMITS = {"http_max_header_bytes": MAX_HEADER_BYTES, "http_max_headers": MAX_HEADERS}


def limited(settings: Settings) -> Settings:
    return settings.model_copy(update=LIMITS)


async def exchange(port: int, head: bytes, *, stream_forever: bool = False) -> bytes:
    """Send ``head`` (then, with ``stream_forever``, endless header bytes) and read the answer
    until the server closes the connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)

    async def answer() -> bytes:
        received = bytearray()
        with contextlib.suppress(ConnectionError):
            while chunk := await reader.read(65_536):
                received += chunk
        return bytes(received)

    reading = asyncio.create_task(answer())
    try:
        writer.write(head)
        if stream_forever:
            chunk = b"a" * 65_536
            with contextlib.suppress(ConnectionError):
                for _ in range(64):  # 4 MiB, far past the limit
                    writer.write(chunk)
                    await writer.drain()
        return await asyncio.wait_for(reading, 10)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


def request(*headers: bytes, path: bytes = b"/healthz") -> bytes:
    return b"GET " + path + b" HTTP/1.1\r\nHost: test\r\n" + b"".join(headers) + b"\r\n"


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


async def assert_limits_hold(port: int) -> None:
    ok = await exchange(port, request(b"Connection: close\r\n"))
    assert status_of(ok) == 200
    # Within the limits, a realistic head: a long cookie and a dozen fields.
    fields = [b"X-Field-%d: value\r\n" % index for index in range(MAX_HEADERS - 3)]
    ok = await exchange(
        port, request(b"Cookie: " + b"c" * 2_000 + b"\r\n", *fields[:10], b"Connection: close\r\n")
    )
    assert status_of(ok) == 200

    many = [b"X-Field-%d: 1\r\n" % index for index in range(MAX_HEADERS + 1)]
    answer = await exchange(port, request(*many))
    assert status_of(answer) == 431, answer[:200]

    answer = await exchange(port, request(b"X-Big: " + b"b" * (MAX_HEADER_BYTES * 3) + b"\r\n"))
    assert status_of(answer) == 431, answer[:200]

    answer = await exchange(port, b"GET /healthz HTTP/1.1\r\nX-Endless: ", stream_forever=True)
    assert status_of(answer) == 431, answer[:200]
    assert b"Request header fields too large" in answer

    # The server is still there for everybody else.
    assert status_of(await exchange(port, request(b"Connection: close\r\n"))) == 200


@contextlib.asynccontextmanager
async def serving(server: uvicorn.Server) -> AsyncIterator[None]:
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.02)
        yield
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 20)


async def test_the_ops_server_of_ingest_and_the_crawler(settings: Settings) -> None:
    port = free_port()
    ops = asyncio.create_task(
        serve_ops(CollectorRegistry(), {}, settings=limited(settings), port=port)
    )
    try:
        for _ in range(500):
            with contextlib.suppress(OSError):
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.close()
                break
            await asyncio.sleep(0.02)
        await assert_limits_hold(port)
    finally:
        ops.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await ops


async def test_the_api(settings: Settings) -> None:
    port = free_port()
    config = api_server_config(api_settings(limited(settings), api_port=port))
    config.log_level = "warning"
    async with serving(EmbeddedServer(config)):
        await assert_limits_hold(port)


async def test_the_notifier_and_its_websocket_handshake(
    settings: Settings, broker: RabbitBroker
) -> None:
    async with running_notifier(notifier_settings(settings, **LIMITS)) as running:
        await assert_limits_hold(running.port)
        handshake = request(
            b"Upgrade: websocket\r\n",
            b"Connection: Upgrade\r\n",
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
            b"Sec-WebSocket-Version: 13\r\n",
            *(b"X-Field-%d: 1\r\n" % index for index in range(MAX_HEADERS)),
            path=b"/ws",
        )
        assert status_of(await exchange(running.port, handshake)) == 431
