"""Fragment's markup as the site serves it (fragment-markup.md, sections 2-4 and 6).

Listing pages, rows, item pages and API answers, with the page chrome and the irregularities
of the real markup: the item page's price box has ``td`` cells straight in its ``tbody`` (no
``tr``), history dates come in a thin and a wide copy, wallets show a ``.ton`` name or the
address in head/middle/tail pieces, ownership history has "Transferred" rows, the countdown is
made of digit reels, and the whole-view ``searchAuctions`` answer carries what goes *inside*
the results section (not the section element).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
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


_HEAD = (
    '<meta name="viewport" content="width=device-width, initial-scale=1.0, minimum-scale=1.0, '
    'maximum-scale=1.0, user-scalable=no" /><meta name="format-detection" content="telephone=no" />'
    '<meta name="robots" content="noindex, nofollow" />'
    '<link href="/css/bootstrap.min.css?3" rel="stylesheet"><link href="/css/auction.css?109" '
    'rel="stylesheet"><script>document.cookie="stel_dt="+encodeURIComponent((new Date)'
    '.getTimezoneOffset())+";path=/;max-age=31536000;samesite=None;secure"</script>'
)
_HEADER = (
    '<header class="tm-header"><div class="tm-header-logo"><a href="/" class="tm-logo '
    'js-header-logo js-logo"><i class="tm-logo-icon js-logo-icon"></i><i class="tm-logo-text">'
    '</i></a></div><div class="tm-header-body"><form action="/" class="tm-header-search-form '
    'js-header-search-form"><div class="icon-before icon-search tm-field tm-search-field">'
    '<input type="search" class="form-control tm-input tm-search-input js-search-input" '
    'name="query" value="" placeholder="Search usernames" autocomplete="off" /></div></form>'
    '</div><div class="tm-header-actions tm-header-actions-wide"><button class="btn '
    'btn-default tm-header-action tm-header-button login-link"><span class="tm-button-label">'
    'Connect Telegram</span></button><button class="btn btn-primary tm-header-action '
    'tm-header-button ton-auth-link"><span class="tm-button-label">Connect TON</span></button>'
    "</div></header>"
)
_FOOTER = (
    '<footer class="tm-footer"><div class="tm-footer-links"><a href="/about" '
    'class="tm-footer-link">About</a><a href="/terms" class="tm-footer-link">Terms</a>'
    '<a href="/privacy" class="tm-footer-link">Privacy Policy</a></div></footer>'
)
_SCRIPTS = (
    '<script src="/js/jquery.min.js?1"></script><script src="/js/main-aj.js?70"></script>'
    '<script src="/js/auction.js?109"></script>'
)
_SORTS = (
    ("price_desc", "Price: High to Low"),
    ("price_asc", "Price: Low to High"),
    ("listed", "Recently listed"),
    ("ending", "Ending soon"),
)
_FILTERS = (("", "All"), ("auction", "On auction"), ("sale", "For sale"), ("sold", "Sold"))


def document(title: str, main: str, init_script: str) -> str:
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title>{_HEAD}</head>"
        '<body class="emoji_image no-transition"><div id="aj_progress" class="progress-bar">'
        f'</div><div id="aj_content">{_HEADER}<main class="tm-main js-main-content">{main}'
        f"</main>{_FOOTER}</div>{_SCRIPTS}{init_script}</body></html>\n"
    )


def _dropdown(options: tuple[tuple[str, str], ...], chosen: str, kind: str) -> str:
    label = dict(options).get(chosen, options[0][1])
    items = "".join(
        f'<li><a class="dropdown-menu-item js-{kind}-item" data-value="{value}">{text}</a></li>'
        for value, text in options
    )
    return (
        '<div class="dropdown tm-dropdown"><a class="tm-dropdown-toggle js-dropdown-toggle" '
        f'data-toggle="dropdown">{label}</a><ul class="dropdown-menu">{items}</ul></div>'
    )


def results_inner(
    rows: str, foot: str, *, asset: Asset, search_mode: bool, sort: str, status_filter: str
) -> str:
    """What goes inside ``section.js-search-results``: header with the sort and filter
    dropdowns, the table, the footer. The whole-view API answer's ``html`` is exactly this."""
    noun = "Numbers" if asset is Asset.NUMBER else "Usernames"
    heading = "Search results" if search_mode else f"Anonymous {noun}"
    first = "Number" if asset is Asset.NUMBER else "Username"
    third = "Status" if search_mode else "Ends in"
    return (
        f'<div class="tm-section-header"><h2 class="tm-section-header-text">{heading}</h2>'
        '<div class="tm-section-header-dropdowns">'
        f"{_dropdown(_SORTS, sort, 'sort')}{_dropdown(_FILTERS, status_filter, 'filter')}</div></div>"
        '<div class="tm-table-wrap"><table class="table tm-table tm-table-fixed"><thead><tr>'
        f'<th style="--thin-width:44%;--wide-width:40%">{first}</th>'
        '<th style="--thin-width:56%;--wide-width:30%">Price</th>'
        f'<th class="wide-only" style="--width:30%">{third}</th></tr></thead>'
        f'<tbody class="tm-high-cells">{rows}</tbody></table></div>'
        f'<div class="tm-search-foot js-search-foot">{foot}</div>'
    )


def results_section(inner: str) -> str:
    return f'<section class="tm-section clearfix js-search-results">{inner}</section>'


def load_more(cursor: str | None) -> str:
    if not cursor:
        return ""
    return f'<div class="tm-load-more js-load-more" data-next-offset="{escape(cursor)}">Show more</div>'


def row_html(listing: SimListing, rate: Decimal, search_mode: bool) -> str:
    """One ``tr.tm-row-selectable`` of a browse view or a search view."""
    href = f"/{listing.asset.value}/{listing.slug}"
    link = f'<a href="{href}" class="table-cell">'
    label, status_class = _STATUS_LABELS[listing.status]
    thin_label = "Resale" if listing.resale else label
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
    if listing.resale and listing.status is ListingStatus.AUCTION:
        label = "Resale"  # search views name resale auctions in this column too
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
    domain = (
        '<span class="tm-web3-address"><span class="subdomain">'
        f'{escape(listing.slug)}</span><span class="domain">.t.me</span></span>'
        if listing.asset is Asset.USERNAME
        else escape(listing.title)
    )
    header = (
        '<section class="tm-section tm-auction-section"><div class="tm-section-header">'
        '<h2 class="tm-section-header-text">'
        f'<span class="tm-section-header-domain">{domain}</span> '
        f'<span class="tm-section-header-status {status_class}">{label}</span></h2>'
        '<div class="tm-section-subscribe tm-section-box js-subscribe"><a class="btn-link '
        'subscribe-btn js-subscribe-btn">Subscribe to updates</a></div></div>'
        f"{_bid_box(listing, rate)}{_countdown(listing)}</section>"
    )
    bids = _history_section(
        "Bid History", "orders", listing.bids, history_page, ("Price", "Date", "From")
    )
    sales = _history_section(
        "Ownership History", "owners", listing.sales, history_page, ("Sale price", "Date", "Buyer")
    )
    return header + (bids if listing.status is ListingStatus.AUCTION else "") + sales


def _cell(inner: str) -> str:
    return f'<td><div class="table-cell">{inner}</div></td>'


def _value(amount: Decimal, rate: Decimal) -> str:
    return (
        f'<div class="table-cell-value tm-value icon-before icon-ton">{ton_html(amount)}</div>'
        f'<div class="table-cell-desc">{usd_html(usd_shown(amount, rate))}</div>'
    )


def wallet_name(address: str) -> str | None:
    """About a quarter of the simulated wallets have a ``.ton`` name (decided by the address)."""
    if sum(map(ord, address)) % 4:
        return None
    return f"{address[2:9].lower().replace('-', 'x').replace('_', 'x')}.ton"


def _wallet(address: str) -> str:
    name = wallet_name(address)
    shown = (
        f'<span class="short">{name}</span>'
        if name
        else f'<span class="head">{address[:20]}</span><span class="middle">{address[20:38]}'
        f'</span><span class="tail">{address[38:]}</span>'
    )
    return (
        f'<a href="https://tonviewer.com/{address}" class="tm-wallet" target="_blank">{shown}</a>'
    )


def _countdown(listing: SimListing) -> str:
    """The auction's end: digit reels inside ``time.tm-countdown-timer`` (the text is not a time)."""
    if listing.status is not ListingStatus.AUCTION or listing.ends_at is None:
        return ""
    left = max(0, int((listing.ends_at - datetime.now(UTC)).total_seconds()))
    days, rest = divmod(left, 86400)
    reels = "".join(
        f'<span class="digit-group"><span class="digit-wrap"><span class="digit timer-{name}" '
        f'data-val="{value}">{value}</span></span><span class="digit-label">{name}</span></span>'
        for name, value in (("d", days), ("h", rest // 3600), ("m", rest % 3600 // 60))
    )
    return (
        '<div class="tm-section-box tm-section-countdown-wrap"><div class="tm-section-countdown-label">'
        'Auction ends in</div><div class="tm-section-countdown">'
        f'<time datetime="{listing.ends_at.isoformat()}" class="tm-countdown-timer" '
        f'data-relative="timer">{reels}</time></div></div>'
    )


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
            '<div class="table-cell-desc">&nbsp;5%</div>',
            _value(listing.price_ton, rate),
        )
        after = (
            '<div class="tm-section-buttons"><button class="btn btn-primary btn-block '
            f'js-place-bid-btn" data-bid-amount="{listing.price_ton}">Place a Bid</button></div>'
        )
    elif listing.status is ListingStatus.SOLD:
        assert listing.sold_at is not None
        labels = ("Sale Price", "Owner")
        cells = (_value(listing.price_ton, rate), _wallet(listing.owner))
        after = f'<div class="tm-bid-info-text">Purchased on {time_html(listing.sold_at)}</div>'
    else:
        labels = ("Sale Price", "Owner")
        cells = (_value(listing.price_ton, rate), _wallet(listing.owner))
        expiry = (
            f'<div class="tm-bid-info-text">Sale ends on {time_html(listing.ends_at)}</div>'
            if listing.ends_at is not None
            else ""
        )
        after = (
            '<div class="tm-section-buttons"><button class="btn btn-primary btn-block '
            f'js-buy-now-btn" data-bid-amount="{listing.price_ton}">Buy Now</button></div>{expiry}'
        )
    widths = ("37%", "28%", "35%") if len(labels) == 3 else ("50%", "50%")
    head = "".join(
        f'<th style="--width:{width}">{label}</th>'
        for width, label in zip(widths, labels, strict=True)
    )
    # As Fragment serves it: the cells straight inside tbody, no tr (browsers add one).
    body = "".join(_cell(cell) for cell in cells)
    return (
        '<div class="tm-section-box tm-section-bid-info"><table class="table tm-table '
        f'tm-table-fixed"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{after}</div>'
    )


def _history_time(moment: datetime) -> str:
    """The date cell: a thin and a wide copy of the same instant."""
    iso = moment.isoformat()
    return (
        '<div class="tm-datetime"><span class="thin-only">'
        f'<time datetime="{iso}" class="short">{moment.strftime("%d %b %Y")}</time></span>'
        f'<span class="wide-only"><time datetime="{iso}">'
        f"{moment.strftime('%d %b %Y at %H:%M')}</time></span></div>"
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
            f"<tr>{_cell(price)}{_cell(_history_time(record.at))}{_cell(_wallet(record.wallet))}</tr>"
        )
    return "".join(rows)


def history_foot(kind: str, cursor: str | None) -> str:
    if not cursor:
        return ""
    return (
        '<tr class="tm-row-selectable"><td colspan="3"><a class="table-cell table-cell-more '
        f'js-load-more-{kind}" data-next-offset="{escape(cursor)}">Show more</a></td></tr>'
    )


def _history_section(
    title: str, kind: str, records: list[HistoryRecord], page: int, labels: tuple[str, str, str]
) -> str:
    cursor = str(page) if len(records) > page else None
    widths = ("--thin-width:100px;--wide-width:25%", "--thin-width:110px;--wide-width:25%")
    head = (
        f'<th style="{widths[0]}">{labels[0]}</th><th style="{widths[1]}">{labels[1]}</th>'
        f'<th style="--width:50%">{labels[2]}</th>'
    )
    return (
        f'<section class="tm-section clearfix"><div class="tm-section-header">'
        f'<h3 class="tm-section-header-text">{title}</h3></div>'
        f'<div class="tm-table-wrap"><table class="table tm-table tm-table-fixed"><thead><tr>{head}'
        f"</tr></thead><tbody>{history_rows(records[:page])}</tbody>"
        f"<tfoot>{history_foot(kind, cursor)}</tfoot></table></div></section>"
    )
