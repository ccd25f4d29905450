"""The fan-out, in two steps: choose the frames for a batch of events, then write them.

The hot path of the notifier: at 20 events a second and thousands of clients it writes a
hundred thousand frames a second. So:

1. :func:`choose_frames` decides, for every subscriber, which frames of a batch it gets and
   writes nothing. Subscribers with the same subscriptions get the same bytes, so a batch is
   worked out once per group of them (:class:`Delivery`).
2. :func:`write_frames` is the one place live frames leave: one ``push`` (one
   ``transport.write``) per subscriber; a subscriber that is too slow is dropped; metrics are
   counted per slice of sockets (one clock reading for ``FANOUT_SLICE`` of them).

A batch is what arrived from the broker in one turn of the event loop (``window_ms=None``), or
what collected in a batched subscription's window (:class:`BatchWindows`, ``window_ms=100``...).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Hashable, Iterable
from typing import Protocol

from fragmenty_notifier.envelope import Envelope
from fragmenty_notifier.frames import Frame
from fragmenty_notifier.metrics import FrameAccounting
from fragmenty_notifier.outbox import Outbox, Pushed

# Sockets written between two clock readings for the latency histogram: each frame of a slice
# is counted as written when the slice ends (about a millisecond late at most, never early).
FANOUT_SLICE = 128


class Subscriber(Protocol):
    """A connection that takes live events (``StreamConnection``)."""

    outbox: Outbox

    def frames_key(self) -> Hashable | None:
        """Subscribers with the same key get the same frames for the same events; None when
        this one's frames are its own (it remembers ids after a replay, or holds events)."""

    def choose(self, envelopes: list[Envelope], window_ms: int | None) -> list[Frame]:
        """This subscriber's frames for a batch; writes nothing."""

    def drop_too_slow(self) -> None: ...


class Delivery:
    """A batch's frames for one group of subscribers, their bytes, and who gets them.

    The plan of a pass holds one of these per group, not an entry per subscriber: a pass over
    thousands of sockets then allocates nothing per socket, so nothing of it lives long enough
    to be promoted by the garbage collector and hasten a full collection (``garbage.py``).
    """

    __slots__ = ("frames", "subscribers", "wire")

    def __init__(self, frames: list[Frame]) -> None:
        self.frames = frames
        self.wire = b"".join([frame.wire for frame in frames])
        self.subscribers: list[Subscriber] = []


def choose_frames(
    subscribers: Iterable[Subscriber], envelopes: list[Envelope], window_ms: int | None
) -> list[Delivery]:
    """Who gets which bytes for this batch; subscribers that want none of it are left out."""
    groups: dict[Hashable, Delivery] = {}
    plan: list[Delivery] = []
    for subscriber in subscribers:
        key = subscriber.frames_key()
        delivery = groups.get(key) if key is not None else None
        if delivery is None:
            delivery = Delivery(subscriber.choose(envelopes, window_ms))
            if key is not None:
                groups[key] = delivery
            if delivery.frames:
                plan.append(delivery)
        if delivery.frames:
            delivery.subscribers.append(subscriber)
    return plan


def write_frames(plan: list[Delivery], accounting: FrameAccounting) -> None:
    """Write each subscriber its bytes; count what was written; drop who is too slow.

    The clock is read once per ``FANOUT_SLICE`` sockets written: each copy is counted as
    written when its slice ends."""
    written_since_clock = 0
    for delivery in plan:
        frames, wire = delivery.frames, delivery.wire
        uncounted = 0  # copies of this delivery written since the last count
        for subscriber in delivery.subscribers:
            pushed = subscriber.outbox.push(frames, wire)
            if pushed is Pushed.WRITTEN:
                uncounted += 1
                written_since_clock += 1
                if written_since_clock == FANOUT_SLICE:
                    accounting.written(frames, uncounted, time.time())
                    uncounted = written_since_clock = 0
            elif pushed is Pushed.TOO_SLOW:
                subscriber.drop_too_slow()
            # HELD: the outbox counts the frames when it writes them; GONE: nothing to do.
        if uncounted:
            accounting.written(frames, uncounted, time.time())


class BatchWindows:
    """The events of each batch window in use (one per distinct ``batch_ms`` of the
    subscriptions): a window opens with its first event and is handed to ``flush`` when it
    closes, ``batch_ms`` later. No timer runs while no event waits."""

    def __init__(self, flush: Callable[[list[Envelope], int], None]) -> None:
        self._flush = flush
        self._users: Counter[int] = Counter()  # batch_ms -> subscriptions using it
        self._open: dict[int, list[Envelope]] = {}

    def use(self, batch_ms: int) -> None:
        self._users[batch_ms] += 1

    def release(self, batch_ms: int) -> None:
        self._users[batch_ms] -= 1
        if self._users[batch_ms] <= 0:
            del self._users[batch_ms]

    def collect(self, envelopes: list[Envelope]) -> None:
        for batch_ms in self._users:
            window = self._open.get(batch_ms)
            if window is None:
                self._open[batch_ms] = list(envelopes)
                asyncio.get_running_loop().call_later(batch_ms / 1000, self._close, batch_ms)
            else:
                window.extend(envelopes)

    def _close(self, batch_ms: int) -> None:
        self._flush(self._open.pop(batch_ms, []), batch_ms)
