"""Reading single values out of Fragment's cells: TON amounts, USD amounts, times, slugs."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from lxml.html import HtmlElement  # type: ignore[import-untyped]

from fragmenty_crawler.parsing.errors import ParseFailure
from fragmenty_shared.contracts import Asset

_TON_TEXT = re.compile(r"^[0-9][0-9,]*(\.[0-9]+)?$")
# " ~ $44,610" or " ~ $36.52" (the page writes &nbsp;~&nbsp;&#036;).
_USD_TEXT = re.compile(r"~\s*\$\s*([0-9][0-9,]*(?:\.[0-9]+)?)")
_ITEM_HREF = re.compile(r"^(?:https?://[^/]+)?/(number|username)/([A-Za-z0-9_]{1,32})/?$")


def ton_amount(cell: HtmlElement, where: str) -> Decimal:
    """The exact TON amount of an ``icon-ton`` value: ``36,645`` or ``12<span class=mini-frac>.5``.

    ``text_content()`` joins the integer text and the ``mini-frac`` text.
    """
    text = cell.text_content().replace("\xa0", "").strip()
    if not _TON_TEXT.match(text):
        raise ParseFailure("bad_price", f"{where}: TON amount {text!r} is not a number")
    return Decimal(text.replace(",", ""))


def usd_amount(text: str) -> Decimal | None:
    """USD from ``" ~ $44,610"``; None when the cell holds a label ("Minimum bid") instead."""
    match = _USD_TEXT.search(text.replace("\xa0", " "))
    if match is None:
        return None
    try:
        return Decimal(match.group(1).replace(",", ""))
    except InvalidOperation:  # pragma: no cover - the regex admits only digits and commas
        return None


def moment(value: str | None, where: str) -> datetime:
    """A ``datetime`` attribute (ISO 8601 with offset) as a UTC datetime."""
    if not value:
        raise ParseFailure("missing_time", f"{where}: no datetime attribute")
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ParseFailure("bad_time", f"{where}: datetime {value!r} is not ISO 8601") from None
    if parsed.tzinfo is None:
        raise ParseFailure("bad_time", f"{where}: datetime {value!r} has no offset")
    return parsed.astimezone(UTC)


def item_link(href: str | None, where: str) -> tuple[Asset, str]:
    """Asset and slug from a link to an item page (``/number/88800001234``)."""
    match = _ITEM_HREF.match(href or "")
    if match is None:
        raise ParseFailure("bad_link", f"{where}: {href!r} is not a link to a number or username")
    return Asset(match.group(1)), match.group(2).lower()


def wallet_address(href: str | None) -> str | None:
    """The address in a ``tonviewer.com/<address>`` link (a ``?query`` after it is dropped)."""
    if not href:
        return None
    address = href.split("?", 1)[0].split("#", 1)[0].rstrip("/").rsplit("/", 1)[-1]
    return address or None


def wallet_name(link: HtmlElement, address: str | None) -> str | None:
    """The display name an ``a.tm-wallet`` shows, kept apart from its address.

    A wallet with a name (``alice.ton``) shows it in ``span.short``; one without shows its
    address, either whole in ``span.short`` or cut into ``span.head``/``middle``/``tail``
    pieces (elided with "…"). Only a real name is returned: address text is not a name.
    """
    shorts = [span for span in link.iter("span") if "short" in (span.get("class") or "").split()]
    text = " ".join((shorts[0] if shorts else link).text_content().split())
    if not text or any(mark in text for mark in ("…", "...")):
        return None
    if address and (text == address or text.replace(" ", "") in address):
        return None
    if not shorts and any(
        "head" in (span.get("class") or "").split() for span in link.iter("span")
    ):
        return None  # head/middle/tail pieces: the address cut up, not a name
    return text
