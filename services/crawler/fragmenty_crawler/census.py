"""Book-keeping of one census: per view, what was fetched, what failed, and when it is done.

A view is *finished* when its listing pages are done (no cursor left, or a failure stopped
them) and no item page of it is outstanding. It is *complete* only if no page or row failed
and every observation was confirmed by the broker: only then may ingest delist from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from fragmenty_crawler.views import View
from fragmenty_shared.contracts import CensusView


@dataclass
class ViewProgress:
    view: View
    pages: int = 0
    rows_parsed: int = 0
    listing_done: bool = False
    outstanding_items: int = 0
    failures: list[str] = field(default_factory=list)
    items_emitted: int = 0
    seen_cursors: set[str] = field(default_factory=set)
    seen_slugs: set[str] = field(default_factory=set)
    duplicates: int = 0
    known_run: int = 0  # incremental sold pass: sales in a row the last census knew
    last_sold_at: datetime | None = None  # incremental sold pass: the last sale time read
    out_of_order: bool = False  # incremental sold pass: the view is not newest first

    @property
    def finished(self) -> bool:
        return self.listing_done and self.outstanding_items == 0

    def fail(self, reason: str) -> None:
        self.failures.append(reason)

    def summary(self, rows_published: int, publish_errors: int) -> CensusView:
        reasons = list(self.failures)
        if publish_errors:
            reasons.append(f"{publish_errors} observations were not confirmed by the broker")
        reason = "; ".join(reasons[:5]) + (
            f" (+{len(reasons) - 5} more)" if len(reasons) > 5 else ""
        )
        return CensusView(
            asset=self.view.asset,
            status=self.view.status,
            rows=rows_published,
            pages=self.pages,
            complete=not reasons,
            reason=reason[:1000] or None,
        )


@dataclass
class CensusReport:
    """What a census did, for the caller (exit status, metrics, progress, benchmark)."""

    crawl_id: str
    started_at: datetime
    completed_at: datetime | None = None
    views: list[CensusView] = field(default_factory=list)
    item_pages: int = 0

    @property
    def complete(self) -> bool:
        return bool(self.views) and all(view.complete for view in self.views)

    @property
    def rows(self) -> int:
        return sum(view.rows for view in self.views)

    @property
    def duration_s(self) -> float:
        end = self.completed_at or self.started_at
        return (end - self.started_at).total_seconds()
