"""Counting frames once they are written: events out, and each live frame's fan-out latency.

A live event may go to thousands of sockets; the fan-out counts the copies of a batch written
together in one call (``copies``), with one clock reading, instead of once per socket.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from fragmenty_notifier.frames import Frame
from fragmenty_notifier.metrics import NotifierMetrics


class FrameAccounting:
    __slots__ = ("_latency_published", "_latency_received", "_live_out", "_replay_out")

    def __init__(self, metrics: NotifierMetrics) -> None:
        self._live_out = metrics.events_out.labels("live")
        self._replay_out = metrics.events_out.labels("replay")
        self._latency_published = metrics.fanout_latency.labels("published")
        self._latency_received = metrics.fanout_latency.labels("received")

    def written(self, frames: Sequence[Frame], copies: int = 1, now: float | None = None) -> None:
        """``copies`` connections were each written ``frames``, at ``now`` at the latest."""
        if copies <= 0:
            return
        if now is None:
            now = time.time()
        live = replayed = 0
        for frame in frames:
            envelope = frame.envelope
            if envelope is not None:
                live += 1
                if envelope.published_at is not None:
                    latency, series = now - envelope.published_at, self._latency_published
                else:
                    latency, series = now - envelope.received_at, self._latency_received
                series.observe_many(max(0.0, latency), copies)
            elif frame.replayed:
                replayed += 1
        if live:
            self._live_out.inc(live * copies)
        if replayed:
            self._replay_out.inc(replayed * copies)
