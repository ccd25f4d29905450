"""The request gate: every request of a scheduled census waits here for its slot.

One slot every ``1/rate`` seconds, one request in flight at a time (the politeness rules of a
plain census), and :class:`~fragmenty_crawler.scheduler.BudgetScheduler` decides who gets each
slot. Census and item requests queue here (``admit``); a head is not queued: when the scheduler
gives a slot to a due head, the gate asks the spider to make that request (``on_head``) and
lets it straight through when it arrives. A census request that is a head's page (``feed``
given with census work) tells the scheduler, when it passes, that the head was read.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter, deque
from collections.abc import Callable

from fragmenty_crawler.scheduler import BudgetScheduler, Decision, Work

logger = logging.getLogger(__name__)


class RequestGate:
    def __init__(self, scheduler: BudgetScheduler, rate: float, lost_after_s: float = 60.0) -> None:
        """``lost_after_s``: a request let through whose answer never comes back (dropped by a
        closing crawl) stops holding the gate after this long."""
        self.scheduler = scheduler
        self._interval = 1.0 / rate
        self._lost_after_s = lost_after_s
        self._busy_since = 0.0
        # Each waiting request: its future, and the head whose page it is (census work only).
        self._waiting: dict[Work, deque[tuple[asyncio.Future[None], str | None]]] = {
            Work.CENSUS: deque(),
            Work.ITEM: deque(),
        }
        self._head_tickets: Counter[str] = Counter()
        self._in_flight = 0
        self._changed = asyncio.Event()
        self.on_head: Callable[[str], None] | None = None
        self.heads_enabled = True  # off once the census is over, so its crawl can end
        self.granted: Counter[Work] = Counter()

    async def admit(self, work: Work, feed: str | None = None) -> None:
        """Wait for this request's slot (a head granted by the scheduler passes at once). A
        census request with ``feed`` is that head's page: its slot counts as the head's read."""
        if work is Work.HEAD and feed is not None and self._head_tickets[feed] > 0:
            self._head_tickets[feed] -= 1
            return  # its slot was booked (and counted in flight) when it was granted
        queue = self._waiting[Work.ITEM if work is Work.ITEM else Work.CENSUS]
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue.append((future, feed if work is Work.CENSUS else None))
        self._changed.set()
        await future

    def head_outcome(self, feed: str, found_new: bool) -> None:
        """A read of ``feed``'s page (a head's or the census's) found something new, or not."""
        self.scheduler.head_outcome(feed, found_new, asyncio.get_running_loop().time())

    def cancel_head(self, feed: str) -> None:
        """A head granted a slot will never be requested (its request could not be made): give
        back its ticket and its slot, so no later request of that feed passes ungated."""
        if self._head_tickets[feed] > 0:
            self._head_tickets[feed] -= 1
        self.done()

    def stop_heads(self) -> None:
        self.heads_enabled = False
        self._changed.set()

    def done(self) -> None:
        """A request this gate let through has its answer (or failed)."""
        self._in_flight = max(0, self._in_flight - 1)
        self._changed.set()

    async def run(self) -> None:
        """Hand out slots until cancelled."""
        loop = asyncio.get_running_loop()
        next_slot = loop.time()
        while True:
            await asyncio.sleep(max(0.0, next_slot - loop.time()))
            if self._in_flight:
                held = loop.time() - self._busy_since
                if held < self._lost_after_s:
                    await self._wait_for_change(self._lost_after_s - held)
                    continue
                logger.warning("a request let through %.0fs ago never answered", held)
                self._in_flight = 0
            self._drop_cancelled()
            now = loop.time()
            decision = self.scheduler.choose(
                now,
                census_waiting=len(self._waiting[Work.CENSUS]),
                items_waiting=len(self._waiting[Work.ITEM]),
                heads=self.heads_enabled,
            )
            if decision.work is None:
                await self._wait_for_change(decision.wait_s)
                continue
            if decision.work is Work.HEAD:
                if self.on_head is None:
                    await asyncio.sleep(0.05)  # the spider is not up yet: it sets on_head at start
                    continue
                assert decision.feed is not None
                self._grant(decision, now)
                self._head_tickets[decision.feed] += 1
                self.on_head(decision.feed)
            else:
                self._grant(decision, now)
                future, feed = self._waiting[decision.work].popleft()
                if feed is not None:
                    self.scheduler.read_by_census(feed, now)
                future.set_result(None)
            next_slot = now + self._interval

    def _grant(self, decision: Decision, now: float) -> None:
        """Book the slot: the scheduler's share and due times, the request now in flight."""
        assert decision.work is not None
        self.scheduler.granted(decision, now)
        self.granted[decision.work] += 1
        self._in_flight += 1
        self._busy_since = now

    async def _wait_for_change(self, at_most_s: float | None) -> None:
        self._changed.clear()
        if at_most_s is not None and at_most_s <= 0:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(None if at_most_s == float("inf") else at_most_s):
                await self._changed.wait()

    def _drop_cancelled(self) -> None:
        for queue in self._waiting.values():
            while queue and queue[0][0].done():
                queue.popleft()
