"""Reading sold views incrementally: sales are append-only history.

After one full pass of a sold view, later censuses read it newest sale first (``sort=listed``)
and stop after a run of sales the previous census already knew; a full sweep still runs every
``FRAGMENTY_SOLD_FULL_SWEEP_S`` (and after any incomplete pass), so an exception to the
append-only rule is caught within that period. Pure functions; the spider and runner use them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from fragmenty_crawler.views import View

# Known sales in a row after which a newest-first pass stops.
KNOWN_RUN_TO_STOP = 20


def known_run(known: Iterable[bool], run_so_far: int) -> int:
    """The run of known sales at the end of a page, continuing the previous pages' run."""
    run = run_so_far
    for is_known in known:
        run = run + 1 if is_known else 0
    return run


def caught_up(run: int, needed: int = KNOWN_RUN_TO_STOP) -> bool:
    return run >= needed


def newest_first(
    sold_ats: Iterable[datetime | None], previous: datetime | None
) -> tuple[bool, datetime | None]:
    """Whether a page's sales run newest first (each sold no later than the one above it,
    ``previous`` being the last of the pages before), and the page's last sale time.

    Stopping at a run of known sales is only right when the view really is newest first; the
    crawler checks it on every page it reads so, rather than trusting ``sort=listed``: if
    Fragment ever orders sold views otherwise, the pass reads on to the end instead of missing
    the sales below the run. Rows without a sale time say nothing about the order.
    """
    last = previous
    for sold_at in sold_ats:
        if sold_at is None:
            continue
        if last is not None and sold_at > last:
            return False, sold_at
        last = sold_at
    return True, last


def incremental_views(
    last_full_pass: Mapping[View, datetime], now: datetime, full_sweep_s: float
) -> frozenset[View]:
    """Sold views that may be read incrementally now: fully read within ``full_sweep_s``."""
    if full_sweep_s <= 0:
        return frozenset()
    return frozenset(
        view for view, at in last_full_pass.items() if (now - at).total_seconds() < full_sweep_s
    )
