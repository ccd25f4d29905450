"""An item page (``/number/<slug>``, ``/username/<slug>``) and its history "Show more" answers."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from lxml import html as lxml_html  # type: ignore[import-untyped]
from lxml.cssselect import CSSSelector  # type: ignore[import-untyped]
from lxml.html import HtmlElement  # type: ignore[import-untyped]

from fragmenty_crawler.parsing import values
from fragmenty_crawler.parsing.ajinit import PageInit, page_init
from fragmenty_crawler.parsing.errors import ParseFailure
from fragmenty_shared.contracts import Asset, HistoryEntry, ListingStatus

_HEADER_DOMAIN = CSSSelector("h2.tm-section-header-text span.tm-section-header-domain")
_HEADER_STATUS = CSSSelector("h2.tm-section-header-text span.tm-section-header-status")
_BID_INFO_TABLE = CSSSelector("div.tm-section-bid-info table.tm-table")
_HEAD_CELLS = CSSSelector("thead th")
_BODY_ROWS = CSSSelector("tbody tr")
_TD = CSSSelector("td")
_TON_VALUE = CSSSelector("div.table-cell-value.icon-ton")
_DESC = CSSSelector("div.table-cell-desc")
_WALLET = CSSSelector("a.tm-wallet")
_PURCHASED = CSSSelector("div.tm-bid-info-text time[datetime]")
_BUY_NOW = CSSSelector(".js-buy-now-btn[data-bid-amount]")
_COUNTDOWN = CSSSelector(".tm-section-countdown-wrap time.tm-countdown-timer[datetime]")
_SECTIONS = CSSSelector("section.tm-section")
_SECTION_TITLE = CSSSelector("h3.tm-section-header-text")
_TIME = CSSSelector("time[datetime]")
_MORE_ORDERS = CSSSelector("a.js-load-more-orders[data-next-offset]")
_MORE_OWNERS = CSSSelector("a.js-load-more-owners[data-next-offset]")
_PERCENT = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*%")

_STATUS_WORDS = {
    "on auction": ListingStatus.AUCTION,
    "for sale": ListingStatus.SALE,
    "sold": ListingStatus.SOLD,
}
# ajInit state.type: which kind of item the page shows.
_STATE_TYPES = {1: Asset.USERNAME, 3: Asset.NUMBER}


@dataclass(frozen=True)
class ItemPage:
    """Everything an item page says about one listing."""

    init: PageInit
    asset: Asset
    slug: str
    title: str
    status: ListingStatus
    price_ton: Decimal | None
    highest_bid_ton: Decimal | None
    bid_step_ton: Decimal | None
    bid_step_pct: Decimal | None
    min_bid_ton: Decimal | None
    ends_at: datetime | None
    sold_at: datetime | None
    owner: str | None
    bid_history: list[HistoryEntry]
    ownership_history: list[HistoryEntry]
    more_bids_offset: str | None
    more_owners_offset: str | None

    @property
    def state_type(self) -> int:
        """The ``type`` the history API wants (``state.type`` of the page)."""
        return 3 if self.asset is Asset.NUMBER else 1


@dataclass(frozen=True)
class HistoryPart:
    """One "Show more" answer of a history table."""

    entries: list[HistoryEntry]
    next_offset: str | None


def parse_item_page(page: str, url: str) -> ItemPage:
    """Read an item page, or :class:`ParseFailure` when it is not one (or is cut off)."""
    if "</html>" not in page[-4096:].lower():
        raise ParseFailure("truncated", f"{url}: the page ends before </html>")
    init = page_init(page, url)
    root = lxml_html.document_fromstring(page)
    asset, slug = _identity(init.state, url)
    domains = _HEADER_DOMAIN(root)
    title = domains[0].text_content().strip() if domains else str(init.state.get("itemTitle", ""))
    if not title:
        raise ParseFailure("missing_title", f"{url}: no item title")
    statuses = _HEADER_STATUS(root)
    word = " ".join(statuses[0].text_content().split()).lower() if statuses else ""
    if word not in _STATUS_WORDS:
        raise ParseFailure("unknown_status", f"{url}: item status {word!r} is not known")
    status = _STATUS_WORDS[word]

    box = _bid_box(root)
    highest = _ton(box.get("highest bid"), url)
    step = _ton(box.get("bid step"), url)
    minimum = _ton(box.get("minimum bid"), url)
    sale_price = _ton(box.get("sale price"), url)
    if status is ListingStatus.AUCTION and minimum is None:
        raise ParseFailure("missing_price", f"{url}: auction page without a minimum bid")
    buy_now = _BUY_NOW(root)
    fixed_price = (
        _decimal(buy_now[0].get("data-bid-amount"), url)
        if buy_now and status is ListingStatus.SALE
        else None
    )
    owner_cell = box.get("owner")
    owners = _WALLET(owner_cell) if owner_cell is not None else []
    countdown = _COUNTDOWN(root)
    purchased = _PURCHASED(root)
    histories = _histories(root, url)
    bids, more_bids = histories.get("bid history", ([], None))
    sales, more_owners = histories.get("ownership history", ([], None))
    return ItemPage(
        init=init,
        asset=asset,
        slug=slug,
        title=title,
        status=status,
        price_ton=minimum if status is ListingStatus.AUCTION else sale_price or fixed_price,
        highest_bid_ton=highest,
        bid_step_ton=step,
        bid_step_pct=_step_pct(box.get("bid step")),
        min_bid_ton=minimum,
        ends_at=values.moment(countdown[0].get("datetime"), url) if countdown else None,
        sold_at=values.moment(purchased[0].get("datetime"), url) if purchased else None,
        owner=values.wallet_address(owners[0].get("href")) if owners else None,
        bid_history=bids,
        ownership_history=sales,
        more_bids_offset=more_bids,
        more_owners_offset=more_owners,
    )


def parse_history_answer(answer: str, url: str) -> HistoryPart:
    """A ``getOrdersHistory``/``getOwnersHistory`` answer: ``{body, foot}``."""
    try:
        data: Any = json.loads(answer)
    except json.JSONDecodeError as exc:
        raise ParseFailure("bad_json", f"{url}: answer is not JSON ({exc})") from None
    if not isinstance(data, dict) or "error" in data:
        raise ParseFailure("api_error", f"{url}: history answer is an error or not an object")
    body, foot = data.get("body"), data.get("foot")
    if not isinstance(body, str):
        raise ParseFailure("bad_answer", f"{url}: history answer lacks body")
    table = lxml_html.fragment_fromstring(
        f"<table><tbody>{body}</tbody><tfoot>{foot or ''}</tfoot></table>", create_parent="div"
    )
    entries = [_history_entry(row, url) for row in _BODY_ROWS(table)]
    return HistoryPart(entries, _cursor(table))


def _identity(state: dict[str, Any], url: str) -> tuple[Asset, str]:
    kind = _STATE_TYPES.get(state.get("type"))  # type: ignore[arg-type]
    slug = state.get("username")
    if kind is not None and isinstance(slug, str | int) and str(slug):
        return kind, str(slug).lower()
    return values.item_link(url.split("?", 1)[0], url)


def _bid_box(root: HtmlElement) -> dict[str, HtmlElement]:
    """The price box's cells keyed by their lower-cased header label."""
    tables = _BID_INFO_TABLE(root)
    if not tables:
        return {}
    labels = [" ".join(th.text_content().split()).lower() for th in _HEAD_CELLS(tables[0])]
    rows = _BODY_ROWS(tables[0])
    cells = _TD(rows[0]) if rows else []
    return dict(zip(labels, cells, strict=False))


def _ton(cell: HtmlElement | None, url: str) -> Decimal | None:
    if cell is None:
        return None
    found = _TON_VALUE(cell)
    return values.ton_amount(found[0], url) if found else None


def _step_pct(cell: HtmlElement | None) -> Decimal | None:
    if cell is None:
        return None
    # The step's percentage is in the description ("5%"), not in the TON value above it.
    descs = _DESC(cell)
    match = _PERCENT.search(descs[0].text_content()) if descs else None
    return Decimal(match.group(1)) if match else None


def _decimal(text: str | None, url: str) -> Decimal:
    cleaned = (text or "").replace(",", "").strip()
    try:
        return Decimal(cleaned)
    except ArithmeticError:
        raise ParseFailure("bad_price", f"{url}: buy-now amount {text!r}") from None


def _histories(root: HtmlElement, url: str) -> dict[str, tuple[list[HistoryEntry], str | None]]:
    found: dict[str, tuple[list[HistoryEntry], str | None]] = {}
    for section in _SECTIONS(root):
        titles = _SECTION_TITLE(section)
        if not titles:
            continue
        name = " ".join(titles[0].text_content().split()).lower()
        if name in ("bid history", "ownership history"):
            entries = [_history_entry(row, url) for row in _BODY_ROWS(section)]
            found[name] = (entries, _cursor(section))
    return found


def _cursor(container: HtmlElement) -> str | None:
    for link in (*_MORE_ORDERS(container), *_MORE_OWNERS(container)):
        cursor = (link.get("data-next-offset") or "").strip()
        if cursor:
            return cursor
    return None


def _history_entry(row: HtmlElement, url: str) -> HistoryEntry:
    cells = _TD(row)
    if len(cells) < 2:
        raise ParseFailure("bad_history", f"{url}: history row with {len(cells)} cells")
    price_values = _TON_VALUE(cells[0])
    if price_values:
        price: Decimal | None = values.ton_amount(price_values[0], url)
    elif "transferred" in cells[0].text_content().lower():
        price = None
    else:
        raise ParseFailure("bad_history", f"{url}: history price is neither TON nor Transferred")
    times = _TIME(cells[1])
    if not times:
        raise ParseFailure("bad_history", f"{url}: history row without a date")
    wallets = _WALLET(row)
    return HistoryEntry(
        price_ton=price,
        at=values.moment(times[0].get("datetime"), url),
        wallet=values.wallet_address(wallets[0].get("href")) if wallets else None,
    )
