"""How one polite request budget is spent: feed heads, the rolling census, item pages.

:class:`BudgetScheduler` is pure (no clock, no I/O): given the feeds' due times, what census
and item requests are waiting and what it granted so far, it says what the next request slot
goes to. The async :class:`~fragmenty_crawler.gate.RequestGate` asks it once per slot.

Priorities (docs/crawler.md, "The scheduler"):

1. **Heads**: the first page of a fast-moving sorted view (newest listings, latest sales,
   auctions ending soonest), each re-read when its period has passed; the most overdue first.
   Heads may take at most ``head_share`` of the slots, so the census always moves on. A head
   that found nothing new for ``idle_after_s``, and for ``IDLE_GAPS`` times its own mean gap
   between finds, is *idle*: it is re-read every ``idle_period_s`` instead, until a read finds
   something again. A census page that is the
   same page as a head (the census reads a view in the head's order) counts as that head's
   read (:meth:`BudgetScheduler.read_by_census`): one request, two uses.
2. **Census**: the rolling census's listing pages.
3. **Item pages**: only in the slack, except that when both census and item requests wait,
   item pages get ``item_share`` of the slots left after heads, so they are not starved by a
   census that always has another page to read.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from enum import StrEnum

# Shares are judged over the last this-many slots.
WINDOW = 50
# A head that has found things goes idle only after this many of its mean gaps between finds
# without one: a feed with a sale every few minutes has quiet spells longer than the idle
# time now and then (at one every 2 minutes, 8 % of gaps exceed 5 minutes), and each would
# make the next sale wait for an idle read. A feed that never found anything still goes idle
# after ``idle_after_s``.
IDLE_GAPS = 10


class Work(StrEnum):
    HEAD = "head"
    CENSUS = "census"
    ITEM = "item"


@dataclass(frozen=True)
class FeedSpec:
    """A head feed: which page, how often (``idle_period_s`` once idle; None: never idle)."""

    key: str
    period_s: float
    idle_period_s: float | None = None


@dataclass(frozen=True)
class Decision:
    """What the next slot goes to; ``work`` None = nothing to do for ``wait_s`` seconds (or
    until a request arrives)."""

    work: Work | None
    feed: str | None = None
    wait_s: float = 0.0


@dataclass
class _Feed:
    spec: FeedSpec
    due_at: float
    read_at: float | None = None  # the last read (a head's slot or the census's page)
    quiet_since: float | None = None  # since when reads found nothing new (None: not read)
    watched_since: float | None = None  # the head's first own read
    finds: int = 0  # reads that found something new since then


@dataclass
class BudgetScheduler:
    feeds: list[FeedSpec]
    head_share: float = 0.6
    item_share: float = 0.2
    start: float = 0.0
    idle_after_s: float = float("inf")
    _feeds: dict[str, _Feed] = field(init=False)
    _recent: deque[Work] = field(init=False)

    def __post_init__(self) -> None:
        if not 0 < self.head_share <= 1 or not 0 <= self.item_share < 1:
            raise ValueError("head_share must be in (0, 1] and item_share in [0, 1)")
        # Every feed is due at once: the first round of heads goes out before the census.
        self._feeds = {spec.key: _Feed(spec, self.start) for spec in self.feeds}
        self._recent = deque(maxlen=WINDOW)

    def choose(
        self, now: float, *, census_waiting: int, items_waiting: int, heads: bool = True
    ) -> Decision:
        """``heads`` False: the census is over, only what waits is served (no new heads)."""
        feeds = self._feeds.values() if heads else ()
        due = [feed for feed in feeds if feed.due_at <= now]
        others_waiting = census_waiting > 0 or items_waiting > 0
        if due and (not others_waiting or self._share(Work.HEAD) < self.head_share):
            most_overdue = min(due, key=lambda feed: (feed.due_at, feed.spec.key))
            return Decision(Work.HEAD, most_overdue.spec.key)
        if census_waiting and items_waiting:
            census, items = self._count(Work.CENSUS), self._count(Work.ITEM)
            give_item = items < self.item_share * (census + items + 1)
            return Decision(Work.ITEM if give_item else Work.CENSUS)
        if census_waiting:
            return Decision(Work.CENSUS)
        if items_waiting:
            return Decision(Work.ITEM)
        # Here nothing waits, so a due head was not held back by its share: none is due.
        next_due = min((feed.due_at for feed in feeds), default=None)
        return Decision(None, wait_s=float("inf") if next_due is None else next_due - now)

    def granted(self, decision: Decision, now: float) -> None:
        """Book a slot given to ``decision`` (work, not a wait): a head is next due one period
        from now."""
        assert decision.work is not None, "a wait is not a slot"
        self._recent.append(decision.work)
        if decision.work is Work.HEAD and decision.feed in self._feeds:
            self._read(self._feeds[decision.feed], now)

    def read_by_census(self, key: str, now: float) -> None:
        """The census's slot (already booked) read head ``key``'s page: it is next due one
        period from now, as if the head had been read."""
        if key in self._feeds:
            self._read(self._feeds[key], now, by_census=True)

    def head_outcome(self, key: str, found_new: bool, now: float) -> None:
        """What a read of head ``key`` found. Something new ends its idleness at once: it is
        next due one (short) period after that read."""
        feed = self._feeds.get(key)
        if feed is None or not found_new:
            return
        if self._idle(feed, now) and feed.read_at is not None:
            feed.due_at = min(feed.due_at, feed.read_at + feed.spec.period_s)
        feed.quiet_since = now
        feed.finds += 1

    def period_s(self, key: str, now: float) -> float:
        """The period head ``key`` is read at now: its own, or its idle one."""
        feed = self._feeds[key]
        if self._idle(feed, now) and feed.spec.idle_period_s is not None:
            return feed.spec.idle_period_s
        return feed.spec.period_s

    def due_at(self, key: str) -> float:
        return self._feeds[key].due_at

    def _read(self, feed: _Feed, now: float, *, by_census: bool = False) -> None:
        # The quiet clock starts with the head's own reads: census pages read while heads are
        # off (the first census) say nothing about how often the feed brings news.
        if feed.quiet_since is None and not by_census:
            feed.quiet_since = feed.watched_since = now
        feed.read_at = now
        feed.due_at = now + self.period_s(feed.spec.key, now)

    def _idle(self, feed: _Feed, now: float) -> bool:
        if feed.quiet_since is None:
            return False
        quiet_for = now - feed.quiet_since
        if feed.finds and feed.watched_since is not None:
            mean_gap = (feed.quiet_since - feed.watched_since) / feed.finds
            return quiet_for >= max(self.idle_after_s, IDLE_GAPS * mean_gap)
        return quiet_for >= self.idle_after_s

    def _count(self, work: Work) -> int:
        return sum(1 for granted in self._recent if granted is work)

    def _share(self, work: Work) -> float:
        # Over a full window even at start, so the first heads are not held back by a share
        # computed from one or two slots.
        return self._count(work) / WINDOW
