"""Gathering messages into batches: up to ``max_size`` rows, or whatever came within ``linger_s``."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class BatchCollector(Generic[T]):
    """Items go in one by one (``put``); ``run`` hands them to ``flush`` in batches, one at a time.

    One batch is flushed at a time, so batches are processed in arrival order; while a batch is
    being written, the next one fills up. ``weigh`` says how much of a batch an item fills (a
    page message: its rows); a batch closes once it weighs ``max_size``, and an item is never
    split, so a batch may end heavier by its last item.
    """

    def __init__(
        self,
        flush: Callable[[list[T]], Awaitable[None]],
        *,
        max_size: int,
        linger_s: float,
        weigh: Callable[[T], int] = lambda _: 1,
    ) -> None:
        self._flush = flush
        self._weigh = weigh
        self._max_size = max_size
        self._linger_s = linger_s
        self._queue: asyncio.Queue[T] = asyncio.Queue()

    def put(self, item: T) -> None:
        self._queue.put_nowait(item)

    @property
    def waiting(self) -> int:
        return self._queue.qsize()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            weight = self._weigh(batch[0])
            deadline = loop.time() + self._linger_s
            while weight < self._max_size:
                if not self._queue.empty():
                    item = self._queue.get_nowait()
                else:
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        break
                    try:
                        item = await asyncio.wait_for(self._queue.get(), remaining)
                    except TimeoutError:
                        break
                batch.append(item)
                weight += self._weigh(item)
            await self._flush(batch)
