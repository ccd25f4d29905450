"""Everything one census shares between its spider, pipeline and middlewares."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from fragmenty_crawler.census import CensusReport, ViewProgress
from fragmenty_crawler.gate import RequestGate
from fragmenty_crawler.metrics import CrawlerMetrics
from fragmenty_crawler.prior import ItemPageSelector
from fragmenty_crawler.publisher import ListingsPublisher
from fragmenty_crawler.views import SORT, HeadFeed, View
from fragmenty_shared.contracts import CensusView, ListingObserved


@dataclass
class PageItem:
    """What the spider hands the pipeline: observations of one page (or one item page).

    ``final`` marks the view's last item: the pipeline then waits for every confirm of the
    view and sends its ``CensusCompleted``. ``sequence`` numbers a view's items, so the
    pipeline can tell it has seen all of them before it closes the view. ``new_rows`` False:
    the observations repeat rows already published from their page, now with an item page's
    details, so they do not count again in the view's ``rows`` (ingest compares that count
    with the distinct listings it saw before it trusts the view for delisting).
    """

    view: View
    observations: list[ListingObserved]
    sequence: int
    final: bool = False
    new_rows: bool = True


@dataclass
class ViewPublishing:
    """The pipeline's side of a view: its publishes in flight, and whether its census went out."""

    pending: list[asyncio.Task[int]] = field(default_factory=list)
    items_seen: int = 0
    closed: bool = False
    arrived: asyncio.Event = field(default_factory=asyncio.Event)  # set when an item comes in


@dataclass
class CensusContext:
    base_url: str
    views: tuple[View, ...]
    crawl_id: str
    publisher: ListingsPublisher
    metrics: CrawlerMetrics
    selector: ItemPageSelector
    report: CensusReport
    history_page_cap: int = 20
    on_progress: Callable[[View, ViewProgress], None] | None = None
    on_view_done: Callable[[CensusView], None] | None = None
    on_published: Callable[[list[ListingObserved]], None] | None = None
    gate: RequestGate | None = None  # set in scheduled mode: heads, census and items share it
    heads: dict[str, HeadFeed] = field(default_factory=dict)
    # Per head, the state of each row it showed when last read (kept across censuses).
    head_rows: dict[str, dict[str, tuple[object, ...]]] = field(default_factory=dict)
    head_publishes: list[asyncio.Task[None]] = field(default_factory=list)
    incremental_sold: frozenset[View] = frozenset()  # sold views read newest-first until known
    # Scheduled mode: views whose census is read in a head's order, so that the census's first
    # page is that head's page and counts as its read (view -> head key).
    census_heads: dict[View, str] = field(default_factory=dict)
    progress: dict[View, ViewProgress] = field(default_factory=dict)
    ton_rates: dict[View, Decimal] = field(default_factory=dict)
    publishing: dict[View, ViewPublishing] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.progress = {view: ViewProgress(view) for view in self.views}
        self.publishing = {view: ViewPublishing() for view in self.views}

    @property
    def started_at(self) -> datetime:
        return self.report.started_at

    def sort_of(self, view: View) -> str:
        """Incremental sold views are read newest sale first, a view whose first page doubles
        as a head in that head's order; every other view in the default order."""
        if view in self.census_heads:
            return self.heads[self.census_heads[view]].sort
        return "listed" if view in self.incremental_sold else SORT
