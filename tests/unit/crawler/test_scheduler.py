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
