"""Fragment's markup, as described in fragment-markup.md: listing pages, rows, item pages.

Only the structure the description names is reproduced (classes, links, ``datetime``
attributes, ``ajInit``); the rest of the real page is left out.
"""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from html import escape
from typing import Any

from fragmenty_shared.contracts import Asset, ListingStatus
from fragmenty_simulator.market import HistoryRecord, SimListing, usd_shown

_STATUS_LABELS = {
    ListingStatus.AUCTION: ("On auction", "tm-status-avail"),
    ListingStatus.SALE: ("For sale", "tm-status-avail"),
    ListingStatus.SOLD: ("Sold", "tm-status-unavail"),
}


def ton_html(amount: Decimal) -> str:
    """``36,645`` or ``12<span class="mini-frac">.5</span>``."""
    whole, _, fraction = f"{amount:f}".partition(".")
    text = f"{int(whole):,}"
    fraction = fraction.rstrip("0")
    return f'{text}<span class="mini-frac">.{fraction}</span>' if fraction else text


def usd_html(amount: Decimal) -> str:
    """`` ~ $44,610`` the way the page writes it (``&nbsp;~&nbsp;&#036;``)."""
    text = f"{amount:,.2f}" if amount != amount.to_integral_value() else f"{int(amount):,}"
    return f"&nbsp;~&nbsp;&#036;{text}"


def time_html(moment: datetime, *, relative: bool = False, css: str = "") -> str:
    visible = moment.strftime("%d %b %Y at %H:%M")
    extra = ' data-relative="text"' if relative else ""
    klass = f' class="{css}"' if css else ""
    return f'<time{klass} datetime="{moment.isoformat()}"{extra}>{visible}</time>'


def ajinit(api_hash: str, rate: Decimal, **state: Any) -> str:
    config = {
        "version": 611,
        "apiUrl": f"/api?hash={api_hash}",
        "unauth": True,
        "state": {"tonRate": float(rate), **state},
    }
    # json.dumps writes "/" plainly; Fragment escapes it as "\/", which JSON readers accept too.
    return "<script>ajInit(" + json.dumps(config).replace("/", "\\/") + ");</script>"


def document(title: str, main: str, init_script: str) -> str:
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title></head>"
        f'<body class="emoji_image no-transition"><main class="tm-main">{main}</main>'
        f"{init_script}</body></html>\n"
    )


def results_section(rows: str, foot: str, search_mode: bool) -> str:
    third = "Status" if search_mode else "Ends in"
    return (
        '<section class="tm-section clearfix js-search-results">'
        '<div class="tm-table-wrap"><table class="table tm-table tm-table-fixed">'
        f"<thead><tr><th>Item</th><th>Price</th><th>{third}</th></tr></thead>"
        f'<tbody class="tm-high-cells">{rows}</tbody></table></div>'
        f'<div class="tm-search-foot js-search-foot">{foot}</div></section>'
    )


def load_more(cursor: str | None) -> str:
    if not cursor:
        return ""
    return f'<div class="tm-load-more js-load-more" data-next-offset="{escape(cursor)}">Show more</div>'


def row_html(listing: SimListing, rate: Decimal, search_mode: bool) -> str:
    """One ``tr.tm-row-selectable`` of a browse view or a search view."""
    href = f"/{listing.asset.value}/{listing.slug}"
    link = f'<a href="{href}" class="table-cell">'
    label, status_class = _STATUS_LABELS[listing.status]
    thin_label = "Resale" if listing.resale and not search_mode else label
    thin_class = "" if thin_label == "Resale" else f" {status_class}"
    web3 = (
        '<div class="table-cell-desc"><span class="tm-web3-address">'
        f'<span class="subdomain">{listing.slug}</span><span class="domain">.t.me</span>'
        "</span></div>"
        if listing.asset is Asset.USERNAME
        else ""
    )
    item = (
        f'<td>{link}<div class="table-cell-value tm-value">{escape(listing.title)}</div>{web3}'
        f'<div class="table-cell-status-thin thin-only{thin_class}">{thin_label}</div></a></td>'
    )
    moment = listing.sold_at if listing.status is ListingStatus.SOLD else listing.ends_at
    if search_mode:
        desc = "Minimum bid" if listing.status is ListingStatus.AUCTION else "Sale price"
    else:
        desc = usd_html(usd_shown(listing.price_ton, rate))
    thin_timer = (
        f'<div class="table-cell-desc thin-only"><div class="tm-timer">'
        f"{time_html(moment, relative=True)}</div></div>"
        if moment is not None and listing.status is not ListingStatus.SOLD
        else ""
    )
    price = (
        f'<td class="thin-last-col">{link}'
        f'<div class="table-cell-value tm-value icon-before icon-ton">{ton_html(listing.price_ton)}</div>'
        f'<div class="table-cell-desc wide-only">{desc}</div>{thin_timer}</a></td>'
    )
    return f'<tr class="tm-row-selectable">{item}{price}{_status_cell(listing, link, search_mode)}</tr>'


def _status_cell(listing: SimListing, link: str, search_mode: bool) -> str:
    label, status_class = _STATUS_LABELS[listing.status]
    shown = f'<div class="table-cell-value tm-value {status_class}">{label}</div>'
    if listing.status is ListingStatus.SOLD:
        assert listing.sold_at is not None
        inner = f'{shown}<div class="table-cell-desc">{time_html(listing.sold_at)}</div>'
    elif listing.ends_at is None:
        inner = shown
    elif search_mode:
        inner = f'{shown}<div class="table-cell-desc"><div class="tm-timer">{time_html(listing.ends_at, relative=True)}</div></div>'
    else:
        inner = (
            f'<div class="table-cell-value tm-value tm-timer">{time_html(listing.ends_at, relative=True)}</div>'
            f'<div class="table-cell-desc">{time_html(listing.ends_at)}</div>'
        )
    return f'<td class="wide-last-col wide-only">{link}{inner}</a></td>'


def item_main(listing: SimListing, rate: Decimal, history_page: int) -> str:
    """The body of ``/number/<slug>`` or ``/username/<slug>``."""
    label, status_class = _STATUS_LABELS[listing.status]
    header = (
        '<section class="tm-section tm-auction-section"><div class="tm-section-header">'
        '<h2 class="tm-section-header-text">'
        f'<span class="tm-section-header-domain">{escape(listing.title)}</span> '
        f'<span class="tm-section-header-status {status_class}">{label}</span></h2></div>'
        f"{_bid_box(listing, rate)}</section>"
    )
    bids = _history_section(
        "Bid History", "orders", listing.bids, history_page, ("Price", "Date", "From")
    )
    sales = _history_section(
        "Ownership History", "owners", listing.sales, history_page, ("Sale price", "Date", "Buyer")
    )
    return header + (bids if listing.status is ListingStatus.AUCTION else "") + sales


def _value(amount: Decimal, rate: Decimal) -> str:
    return (
        f'<div class="table-cell-value tm-value icon-before icon-ton">{ton_html(amount)}</div>'
        f'<div class="table-cell-desc">{usd_html(usd_shown(amount, rate))}</div>'
    )


def _wallet(address: str) -> str:
    return f'<a class="tm-wallet" href="https://tonviewer.com/{address}">{address[:6]}…{address[-6:]}</a>'


def _bid_box(listing: SimListing, rate: Decimal) -> str:
    labels: tuple[str, ...]
    cells: tuple[str, ...]
    if listing.status is ListingStatus.AUCTION:
        highest = listing.highest_bid_ton
        step = (listing.price_ton - highest) if highest is not None else listing.price_ton
        labels = ("Highest Bid", "Bid Step", "Minimum Bid")
        highest_cell = (
            _value(highest, rate)
            if highest is not None
            else '<div class="table-cell-value tm-value">No bids</div>'
        )
        cells = (
            highest_cell,
            f'<div class="table-cell-value tm-value icon-before icon-ton">{ton_html(step)}</div>'
            '<div class="table-cell-desc">5%</div>',
            _value(listing.price_ton, rate),
        )
        assert listing.ends_at is not None
        after = (
            '<div class="tm-section-countdown-wrap"><div class="tm-section-countdown">'
            f"{time_html(listing.ends_at, css='tm-countdown-timer')}</div></div>"
        )
    elif listing.status is ListingStatus.SOLD:
        assert listing.sold_at is not None
        labels = ("Sale Price", "Owner")
        cells = (_value(listing.price_ton, rate), _wallet(listing.owner))
        after = f'<div class="tm-bid-info-text">Purchased on {time_html(listing.sold_at)}</div>'
    else:
        labels = ("Sale Price", "Owner")
        cells = (_value(listing.price_ton, rate), _wallet(listing.owner))
        after = (
            f'<button class="btn btn-primary js-buy-now-btn" data-bid-amount="{listing.price_ton}">'
            "Buy now</button>"
        )
    head = "".join(f"<th>{label}</th>" for label in labels)
    body = "".join(f"<td>{cell}</td>" for cell in cells)
    return (
        '<div class="tm-section-bid-info"><table class="table tm-table">'
        f"<thead><tr>{head}</tr></thead><tbody><tr>{body}</tr></tbody></table>{after}</div>"
    )


def history_rows(records: list[HistoryRecord]) -> str:
    rows = []
    for record in records:
        price = (
            f'<div class="table-cell-value tm-value icon-before icon-ton">{ton_html(record.price_ton)}</div>'
            if record.price_ton is not None
            else '<div class="table-cell-value tm-value">Transferred</div>'
        )
        rows.append(
            f"<tr><td>{price}</td><td>{time_html(record.at)}</td>"
            f"<td>{_wallet(record.wallet)}</td></tr>"
        )
    return "".join(rows)


def history_foot(kind: str, cursor: str | None) -> str:
    if not cursor:
        return ""
    return (
        f'<tr><td colspan="3"><a class="tm-load-more js-load-more-{kind}" '
        f'data-next-offset="{escape(cursor)}">Show more</a></td></tr>'
    )


def _history_section(
    title: str, kind: str, records: list[HistoryRecord], page: int, labels: tuple[str, str, str]
) -> str:
    cursor = str(page) if len(records) > page else None
    head = "".join(f"<th>{label}</th>" for label in labels)
    return (
        f'<section class="tm-section"><div class="tm-section-header">'
        f'<h3 class="tm-section-header-text">{title}</h3></div>'
        f'<table class="table tm-table"><thead><tr>{head}</tr></thead>'
        f"<tbody>{history_rows(records[:page])}</tbody>"
        f"<tfoot>{history_foot(kind, cursor)}</tfoot></table></section>"
    )
