"""The listing search syntax shared by the API's ``q`` and the notifier's ``pattern``.

For numbers, a digit pattern where ``*`` stands for any run of digits and ``?`` for one digit;
spaces, ``+`` and dashes are ignored, and a pattern without ``*`` must match the whole number
(``888 0???`` finds 888 0000 .. 888 0999). For usernames, a case-insensitive substring.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from fragmenty_shared.contracts import Asset

MAX_PATTERN_LENGTH = 64
_NUMBER_PATTERN_CHARS = re.compile(r"^[0-9*?]+$")
_USERNAME_CHARS = re.compile(r"^[a-z0-9_]+$")
_IGNORED_IN_NUMBERS = re.compile(r"[\s+\-()]")


class PatternError(ValueError):
    """The pattern cannot be understood; the message says why, for the user."""


@dataclass(frozen=True)
class ListingPattern:
    """A compiled search pattern: a regular expression over slugs, anchored for numbers."""

    asset: Asset
    regex: str

    def matches(self, slug: str) -> bool:
        return re.search(self.regex, slug) is not None


def compile_pattern(text: str, asset: Asset) -> ListingPattern:
    """Compile ``text`` for ``asset``, or raise :class:`PatternError` saying what is wrong."""
    if len(text) > MAX_PATTERN_LENGTH:
        raise PatternError(f"pattern is longer than {MAX_PATTERN_LENGTH} characters")
    if asset is Asset.NUMBER:
        digits = _IGNORED_IN_NUMBERS.sub("", text)
        if not digits:
            raise PatternError("number pattern is empty")
        if not _NUMBER_PATTERN_CHARS.match(digits):
            raise PatternError("number patterns may contain only digits, '*' and '?'")
        body = "".join(
            "[0-9]*" if char == "*" else "[0-9]" if char == "?" else char for char in digits
        )
        return ListingPattern(asset, f"^{body}$")
    name = text.strip().lstrip("@").lower()
    if not name:
        raise PatternError("username pattern is empty")
    if not _USERNAME_CHARS.match(name):
        raise PatternError("usernames contain only letters, digits and '_'")
    return ListingPattern(asset, re.escape(name))
