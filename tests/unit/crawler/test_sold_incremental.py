"""Incremental reading of sold views: stop at a run of known sales, catch up after a gap,
sweep in full on schedule."""

from datetime import UTC, datetime, timedelta

from fragmenty_crawler.sold import (
    KNOWN_RUN_TO_STOP,
    caught_up,
    incremental_views,
    known_run,
    newest_first,
)
from fragmenty_crawler.views import View
from fragmenty_shared.contracts import Asset, ListingStatus

NUMBERS_SOLD = View(Asset.NUMBER, ListingStatus.SOLD)
USERNAMES_SOLD = View(Asset.USERNAME, ListingStatus.SOLD)
NOW = datetime(2026, 4, 1, 12, tzinfo=UTC)


def test_a_page_of_new_sales_then_known_ones_stops_once_the_run_is_long_enough() -> None:
    page = [False] * 3 + [True] * KNOWN_RUN_TO_STOP

    assert caught_up(known_run(page, 0))


def test_a_known_sale_among_new_ones_does_not_stop_the_pass() -> None:
    page = [True] * (KNOWN_RUN_TO_STOP - 1) + [False] + [True] * 5

    run = known_run(page, 0)

    assert run == 5
    assert not caught_up(run)


def test_after_a_gap_the_pass_reads_on_until_the_run_spans_pages() -> None:
    # Many sales since the last census: the whole first page is new, the second ends known.
    first = known_run([False] * 25, 0)
    second = known_run([False] * 10 + [True] * 15, first)
    third = known_run([True] * 10, second)

    assert (caught_up(first), caught_up(second), caught_up(third)) == (False, False, True)


def test_views_are_read_incrementally_only_within_the_full_sweep_period() -> None:
    passes = {NUMBERS_SOLD: NOW - timedelta(hours=2), USERNAMES_SOLD: NOW - timedelta(hours=30)}

    assert incremental_views(passes, NOW, 86400) == {NUMBERS_SOLD}  # usernames: sweep due
    assert incremental_views(passes, NOW, 0) == frozenset()  # 0 = always full
    assert incremental_views({}, NOW, 86400) == frozenset()  # never read in full yet


def test_sales_newest_first_across_pages_are_in_order() -> None:
    hour = timedelta(hours=1)
    in_order, last = newest_first([NOW, NOW - hour, None, NOW - 2 * hour], None)
    assert (in_order, last) == (True, NOW - 2 * hour)
    assert newest_first([NOW - 2 * hour, NOW - 3 * hour], last) == (True, NOW - 3 * hour)


def test_a_sale_newer_than_the_one_above_it_breaks_the_order_even_across_pages() -> None:
    hour = timedelta(hours=1)
    assert newest_first([NOW - hour, NOW], None)[0] is False
    assert newest_first([NOW], NOW - hour)[0] is False  # the previous page ended older
    assert newest_first([None, None], NOW) == (True, NOW)  # no sale time: nothing to judge
