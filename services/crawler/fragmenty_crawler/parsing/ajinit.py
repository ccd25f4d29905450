"""The ``ajInit({...})`` call every Fragment page embeds: the API hash and the TON rate."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from fragmenty_crawler.parsing.errors import ParseFailure

_AJINIT_CALL = re.compile(r"ajInit\(\s*")
_API_HASH = re.compile(r"[?&]hash=([0-9a-fA-F]+)")


@dataclass(frozen=True)
class PageInit:
    """What ``ajInit`` tells a client: where the API is and how much a TON is worth."""

    api_hash: str
    ton_usd_rate: Decimal
    state: dict[str, Any]


def page_init(html: str, where: str) -> PageInit:
    """Read the page's ``ajInit`` object; fails when it is missing (truncated or changed page)."""
    call = _AJINIT_CALL.search(html)
    if call is None:
        raise ParseFailure("no_ajinit", f"{where}: the page has no ajInit(...) call")
    try:
        config, _ = json.JSONDecoder().raw_decode(html, call.end())
    except json.JSONDecodeError as exc:
        raise ParseFailure("bad_ajinit", f"{where}: ajInit argument is not JSON ({exc})") from None
    if not isinstance(config, dict):
        raise ParseFailure("bad_ajinit", f"{where}: ajInit argument is not an object")
    hash_match = _API_HASH.search(str(config.get("apiUrl", "")))
    if hash_match is None:
        raise ParseFailure("no_api_hash", f"{where}: ajInit apiUrl carries no hash")
    state = config.get("state")
    if not isinstance(state, dict):
        raise ParseFailure("bad_ajinit", f"{where}: ajInit has no state object")
    return PageInit(hash_match.group(1), _ton_rate(state.get("tonRate"), where), state)


def _ton_rate(raw: object, where: str) -> Decimal:
    # The rate arrives as a JSON float; str() keeps the digits the page printed.
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise ParseFailure("no_ton_rate", f"{where}: ajInit state has no tonRate")
    try:
        rate = Decimal(str(raw))
    except InvalidOperation:
        raise ParseFailure("no_ton_rate", f"{where}: tonRate {raw!r} is not a number") from None
    if not rate.is_finite() or rate <= 0:
        raise ParseFailure("no_ton_rate", f"{where}: tonRate {raw!r} is not positive")
    return rate
