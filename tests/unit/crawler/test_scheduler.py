"""The budget scheduler's choices: pure, given due times, what waits and what was granted."""

from collections import Counter

import pytest

from fragmenty_crawler.scheduler import BudgetScheduler, Decision, FeedSpec, Work

FEEDS = [FeedSpec("number:listed", 10.0), FeedSpec("number:ending", 30.0)]


def _run(scheduler: BudgetScheduler, slots: int, *, census: int, items: int) -> Counter[Work]:
    """``slots`` one-second slots with ``census``/``items`` requests always waiting."""
    given: Counter[Work] = Counter()
    for second in range(slots):
        decision = scheduler.choose(float(second), census_waiting=census, items_waiting=items)
        assert decision.work is not None
        scheduler.granted(decision, float(second))
        given[decision.work] += 1
    return given


def test_every_feed_is_due_at_start_and_read_before_the_census() -> None:
    scheduler = BudgetScheduler(FEEDS)

    first = scheduler.choose(0.0, census_waiting=5, items_waiting=5)
    scheduler.granted(first, 0.0)
    second = scheduler.choose(1.0, census_waiting=5, items_waiting=5)
    scheduler.granted(second, 1.0)

    assert {first.feed, second.feed} == {"number:listed", "number:ending"}
    assert scheduler.choose(2.0, census_waiting=5, items_waiting=0) == Decision(Work.CENSUS)


def test_a_head_is_due_again_one_period_after_it_was_read() -> None:
    scheduler = BudgetScheduler([FeedSpec("a", 10.0)])
    scheduler.granted(scheduler.choose(0.0, census_waiting=1, items_waiting=0), 0.0)

    assert scheduler.due_at("a") == 10.0
    assert scheduler.choose(9.9, census_waiting=1, items_waiting=0).work is Work.CENSUS
    assert scheduler.choose(10.0, census_waiting=1, items_waiting=0) == Decision(Work.HEAD, "a")


def test_the_most_overdue_head_goes_first() -> None:
    scheduler = BudgetScheduler([FeedSpec("slow", 30.0), FeedSpec("fast", 5.0)])
    scheduler.granted(Decision(Work.HEAD, "slow"), 0.0)  # due at 30
    scheduler.granted(Decision(Work.HEAD, "fast"), 20.0)  # due at 25

    assert scheduler.choose(31.0, census_waiting=0, items_waiting=0).feed == "fast"


def test_heads_never_take_more_than_their_share_while_the_census_waits() -> None:
    always_due = [FeedSpec(f"feed{n}", 0.0) for n in range(8)]
    scheduler = BudgetScheduler(always_due, head_share=0.6)

    given = _run(scheduler, 200, census=1, items=0)

    assert given[Work.HEAD] / 200 == pytest.approx(0.6, abs=0.03)
    assert given[Work.CENSUS] / 200 == pytest.approx(0.4, abs=0.03)


def test_heads_take_the_whole_budget_when_nothing_else_waits() -> None:
    scheduler = BudgetScheduler([FeedSpec("a", 0.0)], head_share=0.5)

    assert _run(scheduler, 20, census=0, items=0) == Counter({Work.HEAD: 20})


def test_item_pages_get_their_share_when_the_census_always_has_more() -> None:
    scheduler = BudgetScheduler([], item_share=0.2)

    given = _run(scheduler, 100, census=3, items=3)

    assert given[Work.ITEM] == pytest.approx(20, abs=2)
    assert given[Work.CENSUS] == pytest.approx(80, abs=2)


def test_item_pages_take_the_slack_and_never_a_due_head() -> None:
    scheduler = BudgetScheduler([FeedSpec("a", 10.0)])
    scheduler.granted(Decision(Work.HEAD, "a"), 0.0)

    assert scheduler.choose(5.0, census_waiting=0, items_waiting=4) == Decision(Work.ITEM)
    assert scheduler.choose(10.0, census_waiting=0, items_waiting=4) == Decision(Work.HEAD, "a")


def test_with_nothing_waiting_it_says_how_long_until_the_next_head() -> None:
    scheduler = BudgetScheduler(FEEDS)
    scheduler.granted(Decision(Work.HEAD, "number:listed"), 0.0)
    scheduler.granted(Decision(Work.HEAD, "number:ending"), 1.0)

    assert scheduler.choose(4.0, census_waiting=0, items_waiting=0) == Decision(None, wait_s=6.0)


def test_shares_are_checked() -> None:
    with pytest.raises(ValueError, match="head_share"):
        BudgetScheduler(FEEDS, head_share=0.0)


def test_a_census_page_that_is_a_heads_page_counts_as_the_heads_read() -> None:
    scheduler = BudgetScheduler([FeedSpec("number:auction:listed", 12.0)])
    scheduler.granted(Decision(Work.HEAD, "number:auction:listed"), 0.0)

    # The census reads the view in the head's order: its first page, at 7 s, is the head's.
    scheduler.granted(Decision(Work.CENSUS), 7.0)
    scheduler.read_by_census("number:auction:listed", 7.0)

    assert scheduler.due_at("number:auction:listed") == 19.0
    assert scheduler.choose(12.0, census_waiting=1, items_waiting=0) == Decision(Work.CENSUS)


def _idle_scheduler() -> BudgetScheduler:
    return BudgetScheduler([FeedSpec("a", 10.0, idle_period_s=60.0)], idle_after_s=100.0)


def test_a_head_that_finds_nothing_new_for_idle_after_s_is_read_at_its_idle_period() -> None:
    scheduler = _idle_scheduler()
    for second in range(0, 110, 10):  # reads at 0, 10, ..., 100: nothing new in any
        assert scheduler.choose(float(second), census_waiting=1, items_waiting=0).work is Work.HEAD
        scheduler.granted(Decision(Work.HEAD, "a"), float(second))
        scheduler.head_outcome("a", False, float(second) + 0.5)

    # Quiet since the first read (0 s): from 100 s on it is idle.
    assert scheduler.period_s("a", 100.0) == 60.0
    assert scheduler.due_at("a") == 160.0
    assert scheduler.choose(150.0, census_waiting=1, items_waiting=0) == Decision(Work.CENSUS)


def test_a_head_that_finds_something_is_not_idle_and_an_idle_one_wakes_at_once() -> None:
    scheduler = _idle_scheduler()
    scheduler.granted(Decision(Work.HEAD, "a"), 0.0)
    scheduler.head_outcome("a", True, 5.0)  # a find 5 s in: ten gaps are less than 100 s
    assert scheduler.period_s("a", 100.0) == 10.0  # quiet only since 5 s

    scheduler.granted(Decision(Work.HEAD, "a"), 200.0)  # idle by now: next read at 260 s
    assert scheduler.due_at("a") == 260.0
    scheduler.head_outcome("a", True, 200.5)  # ...but that read found something

    assert scheduler.due_at("a") == 210.0  # back to its own period, counted from that read
    assert scheduler.period_s("a", 210.0) == 10.0


def test_a_head_that_finds_things_stays_awake_for_ten_of_its_gaps() -> None:
    scheduler = _idle_scheduler()
    scheduler.granted(Decision(Work.HEAD, "a"), 0.0)
    for second in (60.0, 120.0, 180.0):  # a find a minute
        scheduler.head_outcome("a", True, second)
    # idle_after_s (100 s) alone would make it idle at 280 s; ten gaps of 60 s: at 780 s.
    assert scheduler.period_s("a", 700.0) == 10.0
    assert scheduler.period_s("a", 780.0) == 60.0
    scheduler.head_outcome("a", True, 790.0)  # woken; its mean gap is now 790 / 4
    assert scheduler.period_s("a", 790.0 + 10 * 790.0 / 4 - 1) == 10.0
    assert scheduler.period_s("a", 790.0 + 10 * 790.0 / 4) == 60.0


def test_a_head_without_an_idle_period_never_slows_down() -> None:
    scheduler = BudgetScheduler([FeedSpec("a", 10.0)], idle_after_s=100.0)
    scheduler.granted(Decision(Work.HEAD, "a"), 0.0)
    scheduler.granted(Decision(Work.HEAD, "a"), 500.0)

    assert scheduler.due_at("a") == 510.0


def test_census_reads_alone_never_make_a_head_idle() -> None:
    # The first census reads the head's page with heads off: a market that was still while
    # nothing was known must not make the head idle the moment heads start.
    scheduler = _idle_scheduler()
    for second in (0.0, 100.0, 200.0):
        scheduler.read_by_census("a", second)
    assert scheduler.period_s("a", 300.0) == 10.0

    scheduler.granted(Decision(Work.HEAD, "a"), 300.0)  # heads start: the quiet clock too
    assert scheduler.period_s("a", 399.0) == 10.0
    assert scheduler.period_s("a", 400.0) == 60.0
