"""The census spider: every page of every view, then item pages for the listings that changed.

Per view: the first page by GET (session cookie, ``ajInit`` hash and ``tonRate``), further pages
by ``searchAuctions`` with ``offset_id`` until no cursor is left. Each page becomes one
:class:`PageItem` for the pipeline. Failures never raise out of a callback: they are counted,
logged with URL and reason, and make the view incomplete.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import scrapy
from pydantic import ValidationError
from scrapy import FormRequest, Request
from scrapy.http import Response
from scrapy.spidermiddlewares.httperror import HttpError
from twisted.python.failure import Failure

from fragmenty_crawler import sold
from fragmenty_crawler.context import CensusContext, PageItem
from fragmenty_crawler.parsing.errors import ParseFailure
from fragmenty_crawler.parsing.item import ItemPage, parse_history_answer, parse_item_page
from fragmenty_crawler.parsing.listing import (
    ListingRow,
    RowsOutcome,
    parse_listing_page,
    parse_search_answer,
)
from fragmenty_crawler.scrapy_settings import XHR_HEADERS
from fragmenty_crawler.views import View
from fragmenty_shared.contracts import HistoryEntry, HistoryKind, ItemDetails, ListingObserved

logger = logging.getLogger(__name__)

MAX_HISTORY = 5000  # ItemDetails' limit per history


@dataclass
class _ItemVisit:
    """An item page being read, across its history "Show more" requests."""

    page: ItemPage
    api_hash: str
    bids: list[HistoryEntry] = field(default_factory=list)
    sales: list[HistoryEntry] = field(default_factory=list)
    bids_cursor: str | None = None
    sales_cursor: str | None = None
    history_pages: int = 0


class CensusSpider(scrapy.Spider):
    name = "fragment_census"

    def __init__(self, context: CensusContext, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.context = context

    async def start(self) -> AsyncIterator[Request]:
        if self.context.gate is not None:
            self.context.gate.on_head = self._schedule_head
        for view in self.context.views:
            meta = {"cookiejar": view.key, "work": "census"}
            if view in self.context.census_heads:  # this page is also the head's read
                meta["feed"] = self.context.census_heads[view]
            yield Request(
                view.page_url(self.context.base_url, self.context.sort_of(view)),
                callback=self.parse_first_page,
                errback=self.listing_failed,
                cb_kwargs={"view": view},
                meta=meta,
                dont_filter=True,
            )

    # --- heads (scheduled mode) ------------------------------------------------------------

    def _schedule_head(self, key: str) -> None:
        """The gate gave a slot to head ``key``: make its request (it passes the gate at once)."""
        feed = self.context.heads[key]
        request = Request(
            feed.page_url(self.context.base_url),
            callback=self.parse_head,
            errback=self.head_failed,
            cb_kwargs={"key": key},
            meta={"cookiejar": f"head:{key}", "work": "head", "feed": key},
            dont_filter=True,
            priority=10,
        )
        try:
            self.crawler.engine.crawl(request)
        except Exception:  # the crawl is closing: give the slot and the head's ticket back
            assert self.context.gate is not None
            self.context.gate.cancel_head(key)

    def parse_head(self, response: Response, key: str) -> Iterator[Any]:
        feed = self.context.heads[key]
        self.context.metrics.pages.labels(feed.asset.value, feed.status.value, "head").inc()
        try:
            page = parse_listing_page(
                response.text, response.url, self.context.base_url, feed.status
            )
        except ParseFailure as failure:
            self.context.metrics.parse_failures.labels(f"head_{failure.reason}").inc()
            logger.warning("head %s not read: %s: %s", key, failure.reason, failure.detail)
            return
        assert page.init is not None
        # Only what changed since this head was last read: the census publishes every row
        # anyway, and a head re-read every few seconds would otherwise flood ingest.
        fresh = self._head_read(key, page.rows)
        observations: list[ListingObserved] = []
        read_at = datetime.now(UTC)
        for row in fresh:
            try:
                observations.append(self._observation(row, page.init.ton_usd_rate, read_at))
            except ValidationError:
                continue  # the census reads the same row and reports it
        if observations:
            self.context.head_publishes.append(
                asyncio.ensure_future(self._publish_head(observations))
            )
        yield from ()

    def _head_read(self, key: str, rows: list[ListingRow]) -> list[ListingRow]:
        """The rows of head ``key``'s page that changed since its last read (a head's or the
        census's). The gate learns whether the read found what the head is there for: a
        newest-first head its arrivals (rows it did not show before, above one it did; a
        repriced row is published but does not keep it awake), an ending-soonest head any change (bids). A
        head that finds nothing of the kind for a while is idle and read less often."""
        # A head's first read finds nothing: the census publishes every row, and a burst of
        # eight first pages would only lengthen ingest's backlog before the first change.
        first_read = key not in self.context.head_rows
        last = self.context.head_rows.setdefault(key, {})
        fresh = [] if first_read else [r for r in rows if last.get(r.slug) != _head_state(r)]
        # Arrivals come in at the top: new rows below the last row shown before only slid up
        # into the page because rows above them left (sold, withdrawn).
        shown_before = [index for index, row in enumerate(rows) if row.slug in last]
        above = rows[: shown_before[-1]] if shown_before else rows
        arrivals = not first_read and any(row.slug not in last for row in above)
        last.clear()
        last.update((row.slug, _head_state(row)) for row in rows)
        if self.context.gate is not None:
            ending = self.context.heads[key].sort == "ending"
            self.context.gate.head_outcome(key, bool(fresh) if ending else arrivals)
        return fresh

    async def _publish_head(self, observations: list[ListingObserved]) -> None:
        context = self.context
        try:
            await context.publisher.publish_observations(observations)
        except Exception as exc:  # heads are best effort: the census publishes every row too
            logger.warning("head observations not confirmed: %r", exc)
            return
        context.metrics.published.labels("listing_observed").inc(len(observations))

    def head_failed(self, failure: Failure) -> Iterator[Any]:
        request = failure.request  # type: ignore[attr-defined]
        self.context.metrics.parse_failures.labels(f"head_{_fetch_reason(failure)}").inc()
        logger.warning("head %s not fetched: %s", request.url, failure.getErrorMessage())
        yield from ()

    # --- listing pages ---------------------------------------------------------------------

    def parse_first_page(self, response: Response, view: View) -> Iterator[Any]:
        self._count_page(view, "page")
        try:
            page = parse_listing_page(
                response.text, response.url, self.context.base_url, view.status
            )
        except ParseFailure as failure:
            yield from self._stop_view(view, failure)
            return
        assert page.init is not None
        self.context.ton_rates[view] = page.init.ton_usd_rate
        if view in self.context.census_heads:  # the head's page: the census publishes it all
            self._head_read(self.context.census_heads[view], page.rows)
        yield from self._take_rows(view, page, page.init.ton_usd_rate, page.init.api_hash)

    def parse_more(
        self, response: Response, view: View, api_hash: str, rate: Decimal
    ) -> Iterator[Any]:
        self._count_page(view, "api")
        try:
            outcome = parse_search_answer(
                response.text, response.url, self.context.base_url, view.status
            )
        except ParseFailure as failure:
            yield from self._stop_view(view, failure)
            return
        yield from self._take_rows(view, outcome, rate, api_hash)

    def listing_failed(self, failure: Failure) -> Iterator[Any]:
        request = failure.request  # type: ignore[attr-defined]
        view: View = request.cb_kwargs["view"]
        yield from self._stop_view(
            view,
            ParseFailure(_fetch_reason(failure), f"{request.url}: {failure.getErrorMessage()}"),
        )

    def _take_rows(
        self, view: View, outcome: RowsOutcome, rate: Decimal, api_hash: str
    ) -> Iterator[Any]:
        context, progress = self.context, self.context.progress[view]
        for failure in outcome.failures:
            self._record(view, failure)
        ready: list[ListingObserved] = []
        item_requests: list[Request] = []
        read_at = datetime.now(UTC)  # one time for the page: its rows go out as one message
        for row in outcome.rows:
            if row.slug in progress.seen_slugs:
                # The order moved under the cursor between two pages (a price or listing changed
                # mid-census): the row was already published from an earlier page.
                progress.duplicates += 1
                context.metrics.duplicate_rows.labels(view.asset.value, view.status.value).inc()
                continue
            progress.seen_slugs.add(row.slug)
            observation = self._observe(view, row, rate, read_at)
            if observation is None:
                continue
            # Every row goes out with its page at once, so a change reaches ingest without
            # waiting for item pages (the lowest priority of the budget); a changed listing's
            # item page follows and publishes the row again with its details.
            ready.append(observation)
            if context.selector.wants(row.asset, row.slug, row.status, row.price_ton):
                item_requests.append(self._item_request(view, observation))
        if view in context.incremental_sold and self._caught_up(view, outcome):
            outcome.next_offset = None  # a run of sales already known: the rest is too
        progress.rows_parsed += len(outcome.rows)
        context.metrics.rows.labels(view.asset.value, view.status.value).inc(len(outcome.rows))
        progress.outstanding_items += len(item_requests)
        cursor = outcome.next_offset
        if cursor is not None and cursor in progress.seen_cursors:
            self._record(
                view, ParseFailure("cursor_loop", f"{view.key}: cursor {cursor!r} came back")
            )
            cursor = None
        if cursor is None:
            progress.listing_done = True
        else:
            progress.seen_cursors.add(cursor)
        yield from self._emit(view, ready)
        if cursor is not None:
            yield FormRequest(
                f"{context.base_url.rstrip('/')}/api?hash={api_hash}",
                formdata=view.search_form(cursor, context.sort_of(view)),
                headers={
                    **XHR_HEADERS,
                    "Origin": context.base_url,
                    "Referer": view.page_url(context.base_url, context.sort_of(view)),
                },
                callback=self.parse_more,
                errback=self.listing_failed,
                cb_kwargs={"view": view, "api_hash": api_hash, "rate": rate},
                meta={"cookiejar": view.key, "work": "census"},
                dont_filter=True,
            )
        yield from item_requests
        if context.on_progress is not None:
            context.on_progress(view, progress)

    def _caught_up(self, view: View, outcome: RowsOutcome) -> bool:
        """Whether this newest-first page of a sold view ends in a run of known sales (never,
        once a page shows the view is not really newest first: then it is read to the end)."""
        progress, selector = self.context.progress[view], self.context.selector
        in_order, progress.last_sold_at = sold.newest_first(
            (row.sold_at for row in outcome.rows), progress.last_sold_at
        )
        if not in_order and not progress.out_of_order:
            progress.out_of_order = True
            logger.warning(
                "view %s: sales are not newest first under sort=listed; reading it in full",
                view.key,
            )
        if progress.out_of_order:
            return False
        progress.known_run = sold.known_run(
            (
                selector.known(row.asset, row.slug, row.status, row.price_ton)
                for row in outcome.rows
            ),
            progress.known_run,
        )
        return sold.caught_up(progress.known_run)

    def _observation(self, row: ListingRow, rate: Decimal, read_at: datetime) -> ListingObserved:
        return ListingObserved(
            crawl_id=self.context.crawl_id,
            observed_at=read_at,
            asset=row.asset,
            slug=row.slug,
            title=row.title,
            status=row.status,
            price_ton=row.price_ton,
            price_usd=row.price_usd,
            ton_usd_rate=rate,
            ends_at=row.ends_at,
            sold_at=row.sold_at,
            url=row.url,
        )

    def _observe(
        self, view: View, row: ListingRow, rate: Decimal, read_at: datetime
    ) -> ListingObserved | None:
        try:
            return self._observation(row, rate, read_at)
        except ValidationError as exc:
            fields = ",".join(str(error["loc"][0]) for error in exc.errors() if error["loc"])
            self._record(view, ParseFailure("invalid_row", f"{row.url}: invalid {fields}"))
            return None

    def _stop_view(self, view: View, failure: ParseFailure) -> Iterator[Any]:
        """A page failed: no more pages of this view; it will be reported incomplete."""
        self._record(view, failure)
        self.context.progress[view].listing_done = True
        yield from self._emit(view, [])

    # --- item pages ------------------------------------------------------------------------

    def _item_request(self, view: View, observation: ListingObserved) -> Request:
        return Request(
            observation.url,
            callback=self.parse_item,
            errback=self.item_failed,
            cb_kwargs={"view": view, "observation": observation},
            # An unknown (withdrawn) item answers 302 to a search: that is news, not a page to read.
            meta={
                "cookiejar": view.key,
                "dont_redirect": True,
                "handle_httpstatus_list": [302],
                "work": "item",
            },
            dont_filter=True,
        )

    def parse_item(
        self, response: Response, view: View, observation: ListingObserved
    ) -> Iterator[Any]:
        self._count_page(view, "item")
        if response.status == 302:
            self.context.metrics.item_pages.labels("gone").inc()
            yield from self._item_done(view, observation, None)
            return
        try:
            page = parse_item_page(response.text, response.url)
        except ParseFailure as failure:
            self._record_item_failure(failure)
            yield from self._item_done(view, observation, None)
            return
        if page.status is not observation.status:
            # The item moved on since its row was read (an auction ended, sold or unsold): its
            # page describes another state than the row, so the row goes out without details
            # and the next census reads the new state from the views.
            self.context.metrics.item_pages.labels("moved").inc()
            yield from self._item_done(view, observation, None)
            return
        visit = _ItemVisit(
            page,
            page.init.api_hash,
            list(page.bid_history),
            list(page.ownership_history),
            page.more_bids_offset,
            page.more_owners_offset,
        )
        yield from self._next_history(view, observation, visit)

    def parse_history(
        self,
        response: Response,
        view: View,
        observation: ListingObserved,
        visit: _ItemVisit,
        bids: bool,
    ) -> Iterator[Any]:
        self._count_page(view, "history")
        try:
            part = parse_history_answer(
                response.text, response.url, HistoryKind.BID if bids else HistoryKind.SALE
            )
        except ParseFailure as failure:
            self._record_item_failure(failure)
            yield from self._item_done(view, observation, None)
            return
        if bids:
            visit.bids.extend(part.entries)
            visit.bids_cursor = part.next_offset
        else:
            visit.sales.extend(part.entries)
            visit.sales_cursor = part.next_offset
        yield from self._next_history(view, observation, visit)

    def item_failed(self, failure: Failure) -> Iterator[Any]:
        request = failure.request  # type: ignore[attr-defined]
        self._record_item_failure(
            ParseFailure(_fetch_reason(failure), f"{request.url}: {failure.getErrorMessage()}")
        )
        yield from self._item_done(
            request.cb_kwargs["view"], request.cb_kwargs["observation"], None
        )

    def _next_history(
        self, view: View, observation: ListingObserved, visit: _ItemVisit
    ) -> Iterator[Any]:
        bids = visit.bids_cursor is not None
        cursor = visit.bids_cursor if bids else visit.sales_cursor
        if cursor is None or visit.history_pages >= self.context.history_page_cap:
            try:
                details = _details(visit)
            except ValidationError as exc:
                self._record_item_failure(
                    ParseFailure("invalid_details", f"{observation.url}: {exc}")
                )
                details = None
            else:
                self.context.metrics.item_pages.labels("read").inc()
            yield from self._item_done(view, observation, details)
            return
        visit.history_pages += 1
        page = visit.page
        yield FormRequest(
            f"{self.context.base_url.rstrip('/')}/api?hash={visit.api_hash}",
            formdata={
                "method": "getOrdersHistory" if bids else "getOwnersHistory",
                "type": str(page.state_type),
                "username": page.slug,
                "offset_id": cursor,
            },
            headers={**XHR_HEADERS, "Origin": self.context.base_url, "Referer": observation.url},
            callback=self.parse_history,
            errback=self.item_failed,
            cb_kwargs={"view": view, "observation": observation, "visit": visit, "bids": bids},
            meta={"cookiejar": view.key, "work": "item"},
            dont_filter=True,
        )

    def _item_done(
        self, view: View, observation: ListingObserved, details: ItemDetails | None
    ) -> Iterator[Any]:
        """The item page of a row already published is read (or could not be): its details
        go out as that row again; without details there is nothing new to send."""
        self.context.progress[view].outstanding_items -= 1
        self.context.report.item_pages += 1
        with_details = [observation.model_copy(update={"details": details})] if details else []
        yield from self._emit(view, with_details, new_rows=False)

    # --- book-keeping ----------------------------------------------------------------------

    def _emit(
        self, view: View, observations: list[ListingObserved], *, new_rows: bool = True
    ) -> Iterator[PageItem]:
        progress = self.context.progress[view]
        final = progress.finished
        if observations or final:
            progress.items_emitted += 1
            yield PageItem(view, observations, progress.items_emitted, final, new_rows)

    def _count_page(self, view: View, kind: str) -> None:
        if kind in ("page", "api"):
            self.context.progress[view].pages += 1
        self.context.metrics.pages.labels(view.asset.value, view.status.value, kind).inc()

    def _record(self, view: View, failure: ParseFailure) -> None:
        self.context.progress[view].fail(f"{failure.reason}: {failure.detail}")
        self.context.metrics.parse_failures.labels(failure.reason).inc()
        logger.warning("view %s incomplete: %s: %s", view.key, failure.reason, failure.detail)

    def _record_item_failure(self, failure: ParseFailure) -> None:
        # The listing row was published with its page already; only its details are missing.
        self.context.metrics.parse_failures.labels(f"item_{failure.reason}").inc()
        self.context.metrics.item_pages.labels("failed").inc()
        logger.warning("item page not read: %s: %s", failure.reason, failure.detail)


def _head_state(row: ListingRow) -> tuple[object, ...]:
    return (row.status, row.price_ton, row.ends_at, row.sold_at)


def _details(visit: _ItemVisit) -> ItemDetails:
    page = visit.page
    return ItemDetails(
        highest_bid_ton=page.highest_bid_ton,
        bid_step_ton=page.bid_step_ton,
        bid_step_pct=page.bid_step_pct,
        min_bid_ton=page.min_bid_ton,
        ends_at=page.ends_at,
        owner=page.owner,
        owner_name=page.owner_name,
        sold_at=page.sold_at,
        bid_history=visit.bids[:MAX_HISTORY],
        ownership_history=visit.sales[:MAX_HISTORY],
    )


def _fetch_reason(failure: Failure) -> str:
    error = failure.value
    if isinstance(error, HttpError):
        return f"http_{error.response.status}"
    return f"fetch_{type(error).__name__}"
