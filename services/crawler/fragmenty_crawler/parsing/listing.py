"""Fragment's listing table: the first page (HTML) and the ``searchAuctions`` answers (JSON).

A row becomes a :class:`ListingRow` only when every required field was read; otherwise it is a
:class:`ParseFailure` in the outcome's ``failures``. A page that is not a listing page at all
(no results table, no ``ajInit``, cut off) raises instead: its rows are not trusted.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from lxml import html as lxml_html  # type: ignore[import-untyped]
from lxml.cssselect import CSSSelector  # type: ignore[import-untyped]
from lxml.html import HtmlElement  # type: ignore[import-untyped]

from fragmenty_crawler.parsing import values
from fragmenty_crawler.parsing.ajinit import PageInit, page_init
from fragmenty_crawler.parsing.errors import ParseFailure
from fragmenty_crawler.parsing.item import ItemState
from fragmenty_shared.contracts import Asset, ListingStatus

PAGE_SHAPE = "a listing page (section.js-search-results table.tm-table tbody.tm-high-cells, ajInit)"
ANSWER_SHAPE = (
    "a searchAuctions answer ({ok, html} holding table.tm-table tbody.tm-high-cells, "
    "or {ok, part, body, foot})"
)
_RESULTS_BODY = CSSSelector("section.js-search-results table.tm-table tbody.tm-high-cells")
# The whole-view answer's html is what goes *into* the results section (its header, the sort
# and filter dropdowns, the table, the footer), so the section element itself may be absent.
_ANSWER_BODY = CSSSelector("table.tm-table tbody.tm-high-cells")
_ROWS = CSSSelector("tr.tm-row-selectable")
_LOAD_MORE = CSSSelector(".js-load-more[data-next-offset]")

# Visible status words, lower-cased. "Resale" marks the auction of a resold item, in browse
# and in search views: the view's filter (when it has one) says which market it is in.
_STATUS_WORDS = {
    "on auction": ListingStatus.AUCTION,
    "for sale": ListingStatus.SALE,
    "sold": ListingStatus.SOLD,
}
_RESALE = "resale"
# Search views without a filter also list items that are not on the market: the same words as
# the item pages' states that are not market statuses.
OFF_MARKET_WORDS = tuple(state.value for state in ItemState if state.listing_status is None)


@dataclass(frozen=True, slots=True)
class ListingRow:
    """One fully read row of a listing table (the rate is the page's, added on publishing)."""

    asset: Asset
    slug: str
    title: str
    status: ListingStatus
    price_ton: Decimal
    price_usd: Decimal | None
    ends_at: datetime | None
    sold_at: datetime | None
    url: str


@dataclass(frozen=True, slots=True)
class OffMarketRow:
    """A search-view row of an item that is not listed ("Available", "Taken", "Unavailable"):
    read and counted, never published as a listing."""

    asset: Asset
    slug: str
    title: str
    state: str
    price_ton: Decimal | None  # an "Available" item's minimum bid; "Unknown" for taken ones


@dataclass
class RowsOutcome:
    """The rows of one page or API part: what was read, what was not, and the next cursor."""

    rows: list[ListingRow] = field(default_factory=list)
    failures: list[ParseFailure] = field(default_factory=list)
    next_offset: str | None = None
    off_market: list[OffMarketRow] = field(default_factory=list)


@dataclass
class ListingPage(RowsOutcome):
    """The first page of a view, read by GET: its rows plus the API hash and TON rate."""

    init: PageInit | None = None


def parse_listing_page(
    page: str, url: str, base_url: str, view_status: ListingStatus | None
) -> ListingPage:
    """Read a whole listing page (``/numbers?...`` or ``/?...``)."""
    if "</html>" not in page[-4096:].lower():
        raise ParseFailure("truncated", f"{url}: the page ends before </html>")
    init = page_init(page, url)
    root = lxml_html.document_fromstring(page)
    bodies = _RESULTS_BODY(root)
    if not bodies:
        raise ParseFailure(
            "no_results_table",
            f"{url}: no results table in the page (section.js-search-results table.tm-table "
            "tbody.tm-high-cells)",
        )
    outcome = _read_rows(bodies[0], url, base_url, view_status)
    if not outcome.rows and not outcome.failures and not outcome.off_market:
        raise ParseFailure("empty_page", f"{url}: the results table has no rows")
    return ListingPage(outcome.rows, outcome.failures, _next_offset(root), outcome.off_market, init)


def parse_search_answer(
    answer: str, url: str, base_url: str, view_status: ListingStatus | None
) -> RowsOutcome:
    """Read a ``searchAuctions`` answer: a whole section (``html``) or a part (``body``/``foot``)."""
    data = _json_object(answer, url)
    if data.get("part"):
        body, foot = data.get("body"), data.get("foot")
        if not isinstance(body, str) or not isinstance(foot, str):
            raise ParseFailure("bad_answer", f"{url}: a part answer lacks body or foot")
        rows_root = lxml_html.fragment_fromstring(
            f"<table><tbody>{body}</tbody></table>", create_parent="div"
        )
        outcome = _read_rows(rows_root, url, base_url, view_status)
        outcome.next_offset = _next_offset(_fragment(foot))
        if not outcome.rows and not outcome.failures and outcome.next_offset:
            raise ParseFailure("empty_page", f"{url}: an empty part that points to more")
        return outcome
    section = data.get("html")
    if not isinstance(section, str):
        raise ParseFailure("bad_answer", f"{url}: answer has neither html nor part")
    root = _fragment(section)
    bodies = _ANSWER_BODY(root)
    if not bodies:
        raise ParseFailure(
            "no_results_table",
            f"{url}: the answer's html holds no results table (table.tm-table tbody.tm-high-cells)",
        )
    outcome = _read_rows(bodies[0], url, base_url, view_status)
    outcome.next_offset = _next_offset(root)
    return outcome


def _json_object(answer: str, url: str) -> dict[str, Any]:
    try:
        data = json.loads(answer)
    except json.JSONDecodeError as exc:
        raise ParseFailure("bad_json", f"{url}: answer is not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ParseFailure("bad_answer", f"{url}: answer is not a JSON object")
    if "error" in data:
        raise ParseFailure("api_error", f"{url}: API answered error {data['error']!r}")
    return data


def _fragment(markup: str) -> HtmlElement:
    return lxml_html.fragment_fromstring(markup or "<div></div>", create_parent="div")


def _next_offset(root: HtmlElement) -> str | None:
    for link in _LOAD_MORE(root):
        cursor = (link.get("data-next-offset") or "").strip()
        if cursor:
            return cursor
    return None


def _read_rows(
    container: HtmlElement, url: str, base_url: str, view_status: ListingStatus | None
) -> RowsOutcome:
    outcome = RowsOutcome()
    for index, row in enumerate(_ROWS(container)):
        try:
            read = parse_row(row, base_url, view_status, f"{url} row {index + 1}")
        except ParseFailure as failure:
            outcome.failures.append(failure)
            continue
        if isinstance(read, OffMarketRow):
            outcome.off_market.append(read)
        else:
            outcome.rows.append(read)
    return outcome


@dataclass(slots=True)
class _RowParts:
    """The elements of one row the parser needs, found in a single walk over the row."""

    cells: int = 0
    href: str | None = None
    title: HtmlElement | None = None
    status_thin: HtmlElement | None = None
    price: HtmlElement | None = None
    price_label: HtmlElement | None = None  # a price cell value without icon-ton ("Unknown")
    usd: HtmlElement | None = None
    status_value: HtmlElement | None = None
    status_time: str | None = None
    price_time: str | None = None


def _scan(row: HtmlElement) -> _RowParts:
    """One pass over the row's elements instead of a selector per field: rows are the bulk of
    a census, and this walk is several times faster than ten CSS queries per row."""
    parts = _RowParts()
    for cell in row.iterchildren("td"):
        first = parts.cells == 0
        parts.cells += 1
        cell_classes = (cell.get("class") or "").split()
        in_price = "thin-last-col" in cell_classes
        in_status = "wide-last-col" in cell_classes
        for element in cell.iter("a", "div", "time"):
            tag = element.tag
            if tag == "time":
                moment = element.get("datetime")
                if moment and in_status and parts.status_time is None:
                    parts.status_time = moment
                elif moment and in_price and parts.price_time is None:
                    parts.price_time = moment
                continue
            classes = (element.get("class") or "").split()
            if not classes:
                continue
            if tag == "a":
                if first and parts.href is None and "table-cell" in classes:
                    parts.href = element.get("href")
                continue
            if "table-cell-status-thin" in classes:
                parts.status_thin = parts.status_thin if parts.status_thin is not None else element
            elif "table-cell-value" in classes:
                if first and parts.title is None and "tm-value" in classes:
                    parts.title = element
                elif in_price and parts.price is None and "icon-ton" in classes:
                    parts.price = element
                elif in_price and parts.price_label is None:
                    parts.price_label = element
                elif (
                    in_status
                    and parts.status_value is None
                    and any(name.startswith("tm-status-") for name in classes)
                ):
                    parts.status_value = element
            elif (
                in_price
                and parts.usd is None
                and "table-cell-desc" in classes
                and "wide-only" in classes
            ):
                parts.usd = element
    return parts


def parse_row(
    row: HtmlElement, base_url: str, view_status: ListingStatus | None, where: str
) -> ListingRow | OffMarketRow:
    """One ``tr`` of the listing table, or :class:`ParseFailure` naming the missing field."""
    parts = _scan(row)
    if parts.cells < 3:
        raise ParseFailure("missing_cells", f"{where}: {parts.cells} cells instead of 3")
    if parts.href is None:
        raise ParseFailure("missing_link", f"{where}: no item link (td a.table-cell[href])")
    asset, slug = values.item_link(parts.href, where)
    title = " ".join(parts.title.text_content().split()) if parts.title is not None else ""
    if not title:
        raise ParseFailure("missing_title", f"{where}: no title (div.table-cell-value.tm-value)")
    word = _label_word(parts)
    if word in OFF_MARKET_WORDS and view_status is None:
        price = values.ton_amount(parts.price, where) if parts.price is not None else None
        return OffMarketRow(asset, slug, title, word, price)
    if parts.price is None:
        shown = (
            " ".join(parts.price_label.text_content().split())
            if parts.price_label is not None
            else "nothing"
        )
        raise ParseFailure(
            "missing_price",
            f"{where}: no TON price (td.thin-last-col div.table-cell-value.icon-ton); "
            f"the price cell shows {shown!r}",
        )
    price_ton = values.ton_amount(parts.price, where)
    price_usd = values.usd_amount(parts.usd.text_content()) if parts.usd is not None else None
    status = _status(word, view_status, where)
    moment = parts.status_time or parts.price_time
    when = values.moment(moment, where) if moment else None
    if status is ListingStatus.AUCTION and when is None:
        raise ParseFailure("missing_time", f"{where}: auction row without an end time")
    if status is ListingStatus.SOLD and when is None:
        raise ParseFailure("missing_time", f"{where}: sold row without a sale date")
    return ListingRow(
        asset=asset,
        slug=slug,
        title=title,
        status=status,
        price_ton=price_ton,
        price_usd=price_usd,
        ends_at=None if status is ListingStatus.SOLD else when,
        sold_at=when if status is ListingStatus.SOLD else None,
        url=f"{base_url.rstrip('/')}/{asset.value}/{slug}",
    )


def _label_word(parts: _RowParts) -> str | None:
    """The status the row states (column 3, or the narrow-screen label), lower-cased."""
    label = parts.status_value if parts.status_value is not None else parts.status_thin
    return " ".join(label.text_content().split()).lower() if label is not None else None


def _status(word: str | None, view_status: ListingStatus | None, where: str) -> ListingStatus:
    """The row's own status word, else the view's filter ("Resale" follows the view too)."""
    if word == _RESALE:
        return view_status or ListingStatus.AUCTION
    if word is not None:
        if word not in _STATUS_WORDS:
            expected = ", ".join(repr(known) for known in (*_STATUS_WORDS, _RESALE))
            raise ParseFailure(
                "unknown_status", f"{where}: status {word!r} is not one of {expected}"
            )
        return _STATUS_WORDS[word]
    if view_status is None:
        raise ParseFailure("missing_status", f"{where}: no status label and no view filter")
    return view_status
