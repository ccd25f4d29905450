"""Durations as people write them: ``90s``, ``30m``, ``2h``, ``1d``, ``1h30m`` or plain seconds."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BeforeValidator, Field

_PART = re.compile(r"(\d+)\s*([smhdw])")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
MAX_DURATION_S = 30 * 86_400


def parse_duration(value: object) -> int:
    """Seconds in ``value``; raises ``ValueError`` with a message for the user."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or text like '30m', '2h', '1d'")
    if isinstance(value, int | float):
        return int(value)
    if not isinstance(value, str):
        raise ValueError("a duration is a number of seconds or text like '30m', '2h', '1d'")
    text = value.strip().lower().replace(" ", "")
    if text.isdigit():
        return int(text)
    if not text or _PART.sub("", text):
        raise ValueError(
            f"cannot read {value!r} as a duration; write e.g. '90s', '30m', '2h', '1d'"
        )
    return sum(int(amount) * _UNIT_S[unit] for amount, unit in _PART.findall(text))


DurationSeconds = Annotated[int, BeforeValidator(parse_duration), Field(ge=0, le=MAX_DURATION_S)]
"""A duration in seconds, accepted as seconds or as ``30m``-style text (at most 30 days)."""


def describe_duration(seconds: float) -> str:
    """``2h 5m`` for people; seconds only below a minute."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}s"
    parts = []
    for unit, size in (("d", 86_400), ("h", 3600), ("m", 60)):
        amount, seconds = divmod(seconds, size)
        if amount:
            parts.append(f"{amount}{unit}")
    return " ".join(parts[:2])
