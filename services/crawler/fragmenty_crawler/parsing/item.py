"""An item page (``/number/<slug>``, ``/username/<slug>``) and its history "Show more" answers.

Read from the markup as Fragment serves it (fragment-markup.md section 6), not as a browser
shows it: the price box's ``tbody`` holds its ``td`` cells directly, without a ``tr`` (browsers
add one, lxml does not), so cells are found as ``tbody td``; history dates come twice (a thin
and a wide copy of the same instant) and are read once; a history price is either a TON amount
or the word ``Transferred``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from lxml import html as lxml_html  # type: ignore[import-untyped]
from lxml.cssselect import CSSSelector  # type: ignore[import-untyped]
from lxml.html import HtmlElement  # type: ignore[import-untyped]

from fragmenty_crawler.parsing import values
from fragmenty_crawler.parsing.ajinit import PageInit, page_init
from fragmenty_crawler.parsing.errors import ParseFailure
from fragmenty_shared.contracts import Asset, HistoryEntry, HistoryKind, ListingStatus

ITEM_SHAPE = "an item page (h2 header status, div.tm-section-bid-info price box, ajInit)"
HISTORY_SHAPE = "a getOrdersHistory/getOwnersHistory answer ({body, foot})"
_PRICE_BOX_SHAPE = "div.tm-section-bid-info table: thead th labels over tbody td cells"

_HEADER_DOMAIN = CSSSelector("h2.tm-section-header-text span.tm-section-header-domain")
_HEADER_STATUS = CSSSelector("h2.tm-section-header-text span.tm-section-header-status")
_BID_INFO_TABLE = CSSSelector("div.tm-section-bid-info table")
_HEAD_CELLS = CSSSelector("thead th")
# Not "tbody tr td": the price box's tbody has no tr (see the module docstring).
_BODY_CELLS = CSSSelector("tbody td")
_BODY_ROWS = CSSSelector("tbody tr")
_TD = CSSSelector("td")
_TON_VALUE = CSSSelector("div.table-cell-value.icon-ton")
_ANY_VALUE = CSSSelector("div.table-cell-value")
_DESC = CSSSelector("div.table-cell-desc")
_WALLET = CSSSelector("a.tm-wallet")
_INFO_TEXT = CSSSelector("div.tm-bid-info-text")
_BUY_NOW = CSSSelector(".js-buy-now-btn[data-bid-amount]")
_COUNTDOWN = CSSSelector("time.tm-countdown-timer[datetime]")
_SECTIONS = CSSSelector("section.tm-section")
_SECTION_TITLE = CSSSelector("h3.tm-section-header-text")
_TIME = CSSSelector("time[datetime]")
_MORE_ORDERS = CSSSelector("a.js-load-more-orders[data-next-offset]")
_MORE_OWNERS = CSSSelector("a.js-load-more-owners[data-next-offset]")
_PERCENT = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*%")


class ItemState(StrEnum):
    """What an item page's header says. The first three are market statuses; a census meets
    the others by following a link (an auction that ended unsold, a username in use)."""

    AUCTION = "auction"
    SALE = "sale"
    SOLD = "sold"
    AVAILABLE = "available"  # not (yet) auctioned: a minimum bid, no end time
    TAKEN = "taken"  # in use on Telegram: no price ("Unknown")
    UNAVAILABLE = "unavailable"  # not on the market (tm-status-unavail): no price

    @property
    def listing_status(self) -> ListingStatus | None:
        """The market status, or None for items that are not listed."""
        return _LISTED.get(self)


_LISTED = {
    ItemState.AUCTION: ListingStatus.AUCTION,
    ItemState.SALE: ListingStatus.SALE,
    ItemState.SOLD: ListingStatus.SOLD,
}
_STATE_WORDS = {
    "on auction": ItemState.AUCTION,
    "for sale": ItemState.SALE,
    "sold": ItemState.SOLD,
    "available": ItemState.AVAILABLE,
    "taken": ItemState.TAKEN,
    "unavailable": ItemState.UNAVAILABLE,
}
# ajInit state.type: which kind of item the page shows.
_STATE_TYPES = {1: Asset.USERNAME, 3: Asset.NUMBER}
_SECTION_KINDS = {"bid history": HistoryKind.BID, "ownership history": HistoryKind.SALE}


@dataclass(frozen=True)
class Amount:
    """A TON amount of the price box and the USD the page shows under it (when it does)."""

    ton: Decimal
    usd: Decimal | None


@dataclass(frozen=True)
class ItemPage:
    """Everything an item page says about one item."""

    init: PageInit
    asset: Asset
    slug: str
    title: str
    state: ItemState
    price: Amount | None  # minimum bid (auction, available), fixed price (sale), sale price (sold)
    highest_bid: Amount | None
    bid_step: Amount | None
    bid_step_pct: Decimal | None
    min_bid: Amount | None
    ends_at: datetime | None
    sold_at: datetime | None
    owner: str | None
    owner_name: str | None
    bid_history: list[HistoryEntry]
    ownership_history: list[HistoryEntry]
    more_bids_offset: str | None
    more_owners_offset: str | None

    @property
    def status(self) -> ListingStatus | None:
        return self.state.listing_status

    @property
    def price_ton(self) -> Decimal | None:
        return self.price.ton if self.price else None

    @property
    def highest_bid_ton(self) -> Decimal | None:
        return self.highest_bid.ton if self.highest_bid else None

    @property
    def bid_step_ton(self) -> Decimal | None:
        return self.bid_step.ton if self.bid_step else None

    @property
    def min_bid_ton(self) -> Decimal | None:
        return self.min_bid.ton if self.min_bid else None

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
    title = _title(root, init.state, asset, slug)
    if not title:
        raise ParseFailure("missing_title", f"{url}: no item title (header or ajInit itemTitle)")
    state = _state(root, url)

    box = _price_box(root)
    highest = _amount(box.get("highest bid"), url)
    step = _amount(box.get("bid step"), url)
    minimum = _amount(box.get("minimum bid"), url)
    sale_price = _amount(box.get("sale price"), url) or _amount(box.get("price"), url)
    price = _price(root, state, box, minimum, sale_price, url)
    owner_cell = box.get("owner")
    owners = _WALLET(owner_cell) if owner_cell is not None else []
    owner = values.wallet_address(owners[0].get("href")) if owners else None
    countdown = _COUNTDOWN(root)
    info_time = _info_text_time(root, url)
    sold_at = info_time if state is ItemState.SOLD else None
    ends_at = values.moment(countdown[0].get("datetime"), url) if countdown else None
    if ends_at is None and state is ItemState.SALE:
        ends_at = info_time  # a sale's optional expiry
    histories = _histories(root, url)
    bids, more_bids = histories.get(HistoryKind.BID, ([], None))
    sales, more_owners = histories.get(HistoryKind.SALE, ([], None))
    return ItemPage(
        init=init,
        asset=asset,
        slug=slug,
        title=title,
        state=state,
        price=price,
        highest_bid=highest,
        bid_step=step,
        bid_step_pct=_step_pct(box.get("bid step")),
        min_bid=minimum,
        ends_at=ends_at,
        sold_at=sold_at,
        owner=owner,
        owner_name=values.wallet_name(owners[0], owner) if owners else None,
        bid_history=bids,
        ownership_history=sales,
        more_bids_offset=more_bids,
        more_owners_offset=more_owners,
    )


def parse_history_answer(
    answer: str, url: str, priced_kind: HistoryKind | None = None
) -> HistoryPart:
    """A ``getOrdersHistory``/``getOwnersHistory`` answer: ``{body, foot}``.

    ``priced_kind`` is what a row with a price is (``bid`` for the bid history, ``sale`` for
    the ownership history); None when the caller does not know which history it asked for.
    """
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
    if priced_kind is None:
        priced_kind = _kind_of_cursor(table)
    entries = [_history_entry(row, url, priced_kind) for row in _BODY_ROWS(table)]
    return HistoryPart(entries, _cursor(table))


def _identity(state: dict[str, Any], url: str) -> tuple[Asset, str]:
    kind = _STATE_TYPES.get(state.get("type"))  # type: ignore[arg-type]
    slug = state.get("username")
    if kind is not None and isinstance(slug, str | int) and str(slug):
        return kind, str(slug).lower()
    return values.item_link(url.split("?", 1)[0], url)


def _title(root: HtmlElement, state: dict[str, Any], asset: Asset, slug: str) -> str:
    # ajInit's itemTitle is "@boris" / "+888 8 080"; the header of a username page shows the
    # web3 address instead ("boris" "." "t.me" in spans), which is not the title.
    item_title = state.get("itemTitle")
    if isinstance(item_title, str) and item_title.strip():
        return item_title.strip()
    domains = _HEADER_DOMAIN(root)
    text = " ".join(domains[0].text_content().split()) if domains else ""
    if asset is Asset.USERNAME and text and not text.startswith("@"):
        return f"@{slug}"
    return text


def _state(root: HtmlElement, url: str) -> ItemState:
    statuses = _HEADER_STATUS(root)
    if not statuses:
        raise ParseFailure(
            "missing_status",
            f"{url}: no h2.tm-section-header-text span.tm-section-header-status in the header",
        )
    word = " ".join(statuses[0].text_content().split()).lower()
    if word not in _STATE_WORDS:
        raise ParseFailure(
            "unknown_status",
            f"{url}: item status {word!r} is not one of {', '.join(map(repr, _STATE_WORDS))}",
        )
    return _STATE_WORDS[word]


def _info_text_time(root: HtmlElement, url: str) -> datetime | None:
    """The time under the price box: "Purchased on <time>" (sold) or a sale's expiry."""
    for info in _INFO_TEXT(root):
        times = _TIME(info)
        if times:
            return values.moment(times[0].get("datetime"), url)
    return None


def _price(
    root: HtmlElement,
    state: ItemState,
    box: dict[str, HtmlElement],
    minimum: Amount | None,
    sale_price: Amount | None,
    url: str,
) -> Amount | None:
    """The item's price for its state; a listed item without one is a failure."""
    if state in (ItemState.AUCTION, ItemState.AVAILABLE):
        price = minimum
    elif state is ItemState.SALE:
        buy_now = _BUY_NOW(root)
        fixed = _decimal(buy_now[0].get("data-bid-amount"), url) if buy_now else None
        price = sale_price or (Amount(fixed, None) if fixed is not None else None)
    elif state is ItemState.SOLD:
        price = sale_price
    else:
        return None  # taken or unavailable: the page says "Unknown" or shows no price
    if price is None and state is not ItemState.AVAILABLE:
        wanted = {
            ItemState.AUCTION: "a Minimum Bid",
            ItemState.SALE: "a Sale Price or a buy-now amount",
            ItemState.SOLD: "a Sale Price",
        }[state]
        labels = ", ".join(repr(label) for label in box) or "no labelled cells"
        raise ParseFailure(
            "missing_price",
            f"{url}: {state.value} page without {wanted} in the price box "
            f"(expected {_PRICE_BOX_SHAPE} with an icon-ton value; found {labels})",
        )
    return price


def _price_box(root: HtmlElement) -> dict[str, HtmlElement]:
    """The price box's cells keyed by their lower-cased header label."""
    tables = _BID_INFO_TABLE(root)
    if not tables:
        return {}
    labels = [" ".join(th.text_content().split()).lower() for th in _HEAD_CELLS(tables[0])]
    return dict(zip(labels, _BODY_CELLS(tables[0]), strict=False))


def _amount(cell: HtmlElement | None, url: str) -> Amount | None:
    if cell is None:
        return None
    found = _TON_VALUE(cell)
    if not found:
        return None
    descs = _DESC(cell)
    usd = values.usd_amount(descs[0].text_content()) if descs else None
    return Amount(values.ton_amount(found[0], url), usd)


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


def _histories(
    root: HtmlElement, url: str
) -> dict[HistoryKind, tuple[list[HistoryEntry], str | None]]:
    found: dict[HistoryKind, tuple[list[HistoryEntry], str | None]] = {}
    for section in _SECTIONS(root):
        titles = _SECTION_TITLE(section)
        if not titles:
            continue
        kind = _SECTION_KINDS.get(" ".join(titles[0].text_content().split()).lower())
        if kind is not None:
            entries = [_history_entry(row, url, kind) for row in _BODY_ROWS(section)]
            found[kind] = (entries, _cursor(section))
    return found


def _cursor(container: HtmlElement) -> str | None:
    for link in (*_MORE_ORDERS(container), *_MORE_OWNERS(container)):
        cursor = (link.get("data-next-offset") or "").strip()
        if cursor:
            return cursor
    return None


def _kind_of_cursor(container: HtmlElement) -> HistoryKind | None:
    if _MORE_ORDERS(container):
        return HistoryKind.BID
    if _MORE_OWNERS(container):
        return HistoryKind.SALE
    return None


def _history_entry(row: HtmlElement, url: str, priced_kind: HistoryKind | None) -> HistoryEntry:
    cells = _TD(row)
    if len(cells) < 2:
        raise ParseFailure("bad_history", f"{url}: history row with {len(cells)} cells, not 3")
    price_values = _TON_VALUE(cells[0])
    kind: HistoryKind | None = priced_kind
    if price_values:
        price: Decimal | None = values.ton_amount(price_values[0], url)
    elif any("transferred" in v.text_content().lower() for v in _ANY_VALUE(cells[0])):
        price, kind = None, HistoryKind.TRANSFER
    else:
        text = " ".join(cells[0].text_content().split())
        raise ParseFailure(
            "bad_history",
            f"{url}: history price {text!r} is neither an icon-ton amount nor 'Transferred'",
        )
    # div.tm-datetime holds a thin and a wide copy of the same instant: the first is enough.
    times = _TIME(cells[1])
    if not times:
        raise ParseFailure("bad_history", f"{url}: history row without a time[datetime]")
    wallets = _WALLET(row)
    address = values.wallet_address(wallets[0].get("href")) if wallets else None
    return HistoryEntry(
        price_ton=price,
        at=values.moment(times[0].get("datetime"), url),
        wallet=address,
        kind=kind,
        wallet_name=values.wallet_name(wallets[0], address) if wallets else None,
    )
