"""``fragmenty-crawler probe [--url BASE]``: the drift canary.

Fetches, politely and in one session, the first page of each of the six views, one whole-view
``searchAuctions`` answer and one load-more part (when a view has more), and one item page per
status found in the views, and reads each with the census's own parsers. One line per page:
verdict, shape, URL, what was read (or, for a failure, the reason, the shape expected and what
was missing). The exit status is non-zero on any failure, so a scheduled run tells the day
Fragment changes its markup, before a census publishes half of a market.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TextIO

import httpx

from fragmenty_crawler.middlewares import retry_after_seconds
from fragmenty_crawler.parsing.errors import ParseFailure
from fragmenty_crawler.parsing.item import ITEM_SHAPE, ItemPage, parse_item_page
from fragmenty_crawler.parsing.listing import (
    ANSWER_SHAPE,
    PAGE_SHAPE,
    ListingPage,
    ListingRow,
    RowsOutcome,
    parse_listing_page,
    parse_search_answer,
)
from fragmenty_crawler.scrapy_settings import BROWSER_HEADERS, XHR_HEADERS
from fragmenty_crawler.settings import CrawlerSettings
from fragmenty_crawler.views import ALL_VIEWS, View
from fragmenty_shared.contracts import ListingStatus

_FAILURES_SHOWN = 2


@dataclass
class ProbeLine:
    """The verdict on one fetched page."""

    shape: str  # "listing page", "search answer", "search part", "item page"
    url: str
    read: str = ""
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    def render(self) -> str:
        verdict = "ok  " if self.ok else "FAIL"
        detail = self.read if self.ok else "; ".join(self.failures)
        return f"{verdict}  {self.shape:<13}  {self.url}  {detail}"


@dataclass
class ProbeReport:
    lines: list[ProbeLine] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.lines) and all(line.ok for line in self.lines)


class _PoliteClient:
    """One session (the ``stel_ssid`` cookie), one request at a time, ``rate`` per second, and
    a 429's ``Retry-After`` (or an exponential backoff) honoured before trying again."""

    def __init__(self, settings: CrawlerSettings, transport: httpx.AsyncBaseTransport | None):
        self._settings = settings
        self._interval = 1.0 / settings.crawl_rate if settings.politeness else 0.0
        self._next_at = 0.0
        self._http = httpx.AsyncClient(
            base_url=settings.fragment_url,
            headers={**BROWSER_HEADERS, "User-Agent": settings.user_agent},
            timeout=settings.request_timeout_s,
            transport=transport,
        )

    async def close(self) -> None:
        await self._http.aclose()

    async def get(self, url: str) -> httpx.Response:
        return await self._send(lambda: self._http.get(url))

    async def api(self, api_hash: str, form: dict[str, str], referer: str) -> httpx.Response:
        base = self._settings.fragment_url.rstrip("/")
        headers = {**XHR_HEADERS, "Origin": base, "Referer": referer}
        return await self._send(
            lambda: self._http.post(f"{base}/api?hash={api_hash}", data=form, headers=headers)
        )

    async def _send(self, request: Callable[[], Awaitable[httpx.Response]]) -> httpx.Response:
        loop = asyncio.get_running_loop()
        for attempt in range(self._settings.max_retries + 1):
            await asyncio.sleep(max(0.0, self._next_at - loop.time()))
            self._next_at = loop.time() + self._interval
            response = await request()
            if response.status_code != 429 or attempt == self._settings.max_retries:
                return response
            asked = retry_after_seconds(
                response.headers.get("retry-after", "").encode() or None, loop.time()
            )
            wait = asked if asked is not None else 2.0**attempt
            self._next_at = loop.time() + min(self._settings.max_backoff_s, wait)
        raise AssertionError("unreachable")  # pragma: no cover


async def run_probe(
    settings: CrawlerSettings, *, transport: httpx.AsyncBaseTransport | None = None
) -> ProbeReport:
    """Probe ``settings.fragment_url``; ``transport`` lets tests talk to an in-process app."""
    report = ProbeReport()
    logging.getLogger("httpx").setLevel(logging.WARNING)  # the report says what was fetched
    client = _PoliteClient(settings, transport)
    base = settings.fragment_url
    first_rows: dict[ListingStatus, tuple[View, ListingRow]] = {}
    api: tuple[View, str, str | None] | None = None  # a view, its session hash, its cursor
    try:
        for view in ALL_VIEWS:
            url = view.page_url(base)
            line, outcome = await _listing(client, url, view, base)
            report.lines.append(line)
            if outcome is None:
                continue
            for row in outcome.rows:
                first_rows.setdefault(row.status, (view, row))
            if outcome.init is not None and (api is None or api[2] is None):
                api = (view, outcome.init.api_hash, outcome.next_offset)
        if api is not None:
            report.lines.extend(await _answers(client, base, *api))
        for status in ListingStatus:
            if status in first_rows:
                report.lines.append(await _item(client, *first_rows[status]))
    finally:
        await client.close()
    return report


async def _listing(
    client: _PoliteClient, url: str, view: View, base: str
) -> tuple[ProbeLine, ListingPage | None]:
    line = ProbeLine("listing page", url)
    response = await _fetched(client.get(url), line)
    if response is None:
        return line, None
    try:
        page = parse_listing_page(response.text, url, base, view.status)
    except ParseFailure as failure:
        line.failures.append(_explain(failure, PAGE_SHAPE))
        return line, None
    _judge_rows(line, page, PAGE_SHAPE)
    line.read += f", next cursor {'yes' if page.next_offset else 'none'}"
    return line, page


async def _answers(
    client: _PoliteClient, base: str, view: View, api_hash: str, cursor: str | None
) -> list[ProbeLine]:
    """The API in both shapes: a whole-view answer, and a load-more part when there is more."""
    referer = view.page_url(base)
    forms = [("search answer", view.search_form(None))]
    if cursor is not None:
        forms.append(("search part", view.search_form(cursor)))
    lines = []
    for shape, form in forms:
        line = ProbeLine(shape, f"{base.rstrip('/')}/api {form['method']} {view.key}")
        if "offset_id" in form:
            line.url += f" offset_id={form['offset_id']}"
        response = await _fetched(client.api(api_hash, form, referer), line)
        if response is not None:
            try:
                outcome = parse_search_answer(response.text, line.url, base, view.status)
            except ParseFailure as failure:
                line.failures.append(_explain(failure, ANSWER_SHAPE))
            else:
                _judge_rows(line, outcome, ANSWER_SHAPE)
        lines.append(line)
    return lines


async def _item(client: _PoliteClient, view: View, row: ListingRow) -> ProbeLine:
    line = ProbeLine("item page", row.url)
    response = await _fetched(client.get(row.url), line)
    if response is None:
        return line
    try:
        item = parse_item_page(response.text, row.url)
    except ParseFailure as failure:
        line.failures.append(_explain(failure, ITEM_SHAPE))
        return line
    line.read = _item_summary(item, row)
    return line


async def _fetched(request: Awaitable[httpx.Response], line: ProbeLine) -> httpx.Response | None:
    try:
        response = await request
    except httpx.HTTPError as exc:
        line.failures.append(f"fetch_{type(exc).__name__}: {line.url}: {exc}")
        return None
    if response.status_code != 200:
        line.failures.append(
            f"http_{response.status_code}: {line.url}: expected 200 with the page"
            + (f", redirected to {response.headers['location']}" if response.is_redirect else "")
        )
        return None
    return response


def _judge_rows(line: ProbeLine, outcome: RowsOutcome, shape: str) -> None:
    read = len(outcome.rows) + len(outcome.failures)
    line.read = f"{len(outcome.rows)} of {read} rows read"
    if outcome.off_market:
        line.read += f", {len(outcome.off_market)} not on the market"
    for failure in outcome.failures[:_FAILURES_SHOWN]:
        line.failures.append(_explain(failure, shape))
    if len(outcome.failures) > _FAILURES_SHOWN:
        line.failures.append(f"(+{len(outcome.failures) - _FAILURES_SHOWN} more rows not read)")
    if outcome.failures:
        line.failures.insert(0, f"{len(outcome.failures)} of {read} rows not read")


def _item_summary(item: ItemPage, row: ListingRow) -> str:
    parts = [f"{item.state.value}", f"price {item.price_ton}"]
    if item.highest_bid_ton is not None:
        parts.append(f"highest bid {item.highest_bid_ton}")
    if item.bid_step_ton is not None:
        parts.append(f"bid step {item.bid_step_ton} ({item.bid_step_pct}%)")
    if item.ends_at is not None:
        parts.append(f"ends {item.ends_at.isoformat()}")
    if item.sold_at is not None:
        parts.append(f"sold {item.sold_at.isoformat()}")
    if item.owner is not None:
        parts.append(f"owner {item.owner_name or item.owner}")
    parts.append(f"{len(item.bid_history)} bids, {len(item.ownership_history)} sales/transfers")
    if item.status is not row.status:
        parts.append(f"(the row said {row.status.value}: it moved on)")
    return ", ".join(parts)


def _explain(failure: ParseFailure, shape: str) -> str:
    return f"{failure.reason}: expected {shape}: {failure.detail}"


def print_report(report: ProbeReport, out: TextIO = sys.stdout) -> None:
    for line in report.lines:
        out.write(line.render() + "\n")
    failed = sum(not line.ok for line in report.lines)
    verdict = "no drift seen" if report.ok else f"{failed} of {len(report.lines)} pages FAILED"
    out.write(f"probe: {len(report.lines)} pages, {verdict}\n")
