"""Frames are encoded once, exactly as the websockets library would encode them."""

import pytest
from websockets.frames import Frame as WebSocketFrame
from websockets.frames import Opcode

from fragmenty_notifier.frames import Frame, encode_text_frame


@pytest.mark.parametrize("length", [0, 1, 125, 126, 65535, 65536, 200_000])
def test_text_frames_match_the_websockets_encoding(length: int) -> None:
    payload = ("é" * length).encode()[:length]
    expected = WebSocketFrame(Opcode.TEXT, payload).serialize(mask=False, extensions=[])
    assert encode_text_frame(payload) == expected


def test_a_frame_encodes_its_text_once() -> None:
    frame = Frame('{"type":"pong"}')
    assert frame.wire is frame.wire
    assert frame.wire == encode_text_frame(b'{"type":"pong"}')
    assert len(frame) == 2 + len('{"type":"pong"}')
