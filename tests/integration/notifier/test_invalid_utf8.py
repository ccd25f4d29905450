"""A text frame that is not UTF-8 closes that connection with 1007 and logs one line, no traceback."""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import struct

import pytest

from .conftest import RunningNotifier

CONNECTIONS = 5


async def send_invalid_text_frame(port: int) -> bytes:
    """Open /ws by hand, send one masked text frame holding invalid UTF-8, read what comes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    key = base64.b64encode(os.urandom(16))
    writer.write(
        b"GET /ws HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: " + key + b"\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101"), head
    payload = b'{"action":"\xff\xfe"}'
    mask = os.urandom(4)
    masked = bytes(byte ^ mask[index % 4] for index, byte in enumerate(payload))
    writer.write(struct.pack("!BB", 0x81, 0x80 | len(payload)) + mask + masked)
    try:
        return await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()


async def test_invalid_utf8_closes_with_1007_without_a_traceback(
    notifier: RunningNotifier, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for _ in range(CONNECTIONS):
        answer = await send_invalid_text_frame(notifier.port)
        # A close frame (0x88) whose code is 1007 (invalid frame payload data).
        assert answer[:1] == b"\x88", answer
        assert struct.unpack("!H", answer[2:4])[0] == 1007
    with_traceback = [record for record in caplog.records if record.exc_info]
    assert with_traceback == [], [record.getMessage() for record in with_traceback]
    warned = [record for record in caplog.records if "Invalid UTF-8" in record.getMessage()]
    assert len(warned) == CONNECTIONS
    assert {record.levelno for record in warned} == {logging.WARNING}
