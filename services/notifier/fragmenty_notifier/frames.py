"""Frames on their way out: the text, and its WebSocket wire form encoded once.

A server's frames are not masked, so one text frame has the same bytes on every connection: an
event going to thousands of sockets is encoded once and written as it is to each.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fragmenty_notifier.envelope import Envelope

OP_TEXT = 0x1
FIN = 0x80


def encode_text_frame(payload: bytes) -> bytes:
    """An unmasked, unfragmented WebSocket text frame (RFC 6455 section 5.2)."""
    length = len(payload)
    if length < 126:
        header = bytes((FIN | OP_TEXT, length))
    elif length < 1 << 16:
        header = bytes((FIN | OP_TEXT, 126)) + length.to_bytes(2, "big")
    else:
        header = bytes((FIN | OP_TEXT, 127)) + length.to_bytes(8, "big")
    return header + payload


class Frame:
    """One text frame; its wire bytes are computed on first use and kept.

    ``envelope`` is set on live event frames (their fan-out latency is measured), ``replayed``
    on event frames of a ``?since=`` replay.
    """

    __slots__ = ("_wire", "envelope", "replayed", "text")

    def __init__(
        self, text: str, envelope: Envelope | None = None, *, replayed: bool = False
    ) -> None:
        self.text = text
        self.envelope = envelope
        self.replayed = replayed
        self._wire: bytes | None = None

    @property
    def wire(self) -> bytes:
        if self._wire is None:
            self._wire = encode_text_frame(self.text.encode())
        return self._wire

    def __len__(self) -> int:
        return len(self.wire)
