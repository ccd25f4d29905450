"""Frames on their way out: the text, and its WebSocket wire form encoded once.

A server's frames are not masked, so one text frame has the same bytes on every connection: an
event going to thousands of sockets is encoded once and written as it is to each.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fragmenty_notifier.protocol import events_frame

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

    ``envelopes``: the live events the frame carries (their fan-out latency is measured), one for
    an ``event`` frame, several for an ``events`` frame (``batched``, of ``subscription``);
    ``replayed`` marks the event frames of a ``?since=`` replay.
    """

    __slots__ = ("_wire", "batched", "envelopes", "replayed", "subscription", "text")

    def __init__(
        self,
        text: str,
        envelopes: tuple[Envelope, ...] = (),
        *,
        subscription: str | None = None,
        batched: bool = False,
        replayed: bool = False,
    ) -> None:
        self.text = text
        self.envelopes = envelopes
        self.subscription = subscription
        self.batched = batched
        self.replayed = replayed
        self._wire: bytes | None = None

    @classmethod
    def of_events(cls, subscription: str, envelopes: tuple[Envelope, ...]) -> Frame:
        """One ``events`` frame: every event of a batch window for a batched subscription."""
        text = events_frame(subscription, [envelope.event_json for envelope in envelopes])
        return cls(text, envelopes, subscription=subscription, batched=True)

    @property
    def wire(self) -> bytes:
        if self._wire is None:
            self._wire = encode_text_frame(self.text.encode())
        return self._wire

    def __len__(self) -> int:
        return len(self.wire)


def coalesce(frames: list[Frame]) -> list[Frame]:
    """Frames that waited for a slow client, fewer: neighbouring ``events`` frames of the same
    subscription become one. Order is kept; frames of subscriptions that did not ask for
    batches stay one frame per event (their clients may not read ``events`` frames)."""
    merged: list[Frame] = []
    for frame in frames:
        previous = merged[-1] if merged else None
        if (
            previous is not None
            and frame.batched
            and previous.batched
            and frame.subscription == previous.subscription
        ):
            assert frame.subscription is not None
            merged[-1] = Frame.of_events(frame.subscription, previous.envelopes + frame.envelopes)
        else:
            merged.append(frame)
    return merged
