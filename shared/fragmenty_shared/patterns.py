"""The listing search syntax shared by the API's ``q`` and the notifier's ``pattern``.

For numbers, a digit pattern where ``*`` stands for any run of digits and ``?`` for one digit;
spaces, ``+`` and dashes are ignored, and a pattern without ``*`` must match the whole number
(``888 0???`` finds 888 0000 .. 888 0999). For usernames, a case-insensitive substring.

Matching never backtracks. A naive translation (each ``*`` to ``[0-9]*``) makes a failing match
try every way of splitting the number between the stars: ``**********1`` took seconds per
listing. Here runs of stars collapse into one, and a number pattern becomes its fixed pieces
between the stars (``888*77*1`` is ``888``, ``77``, ``1``): the first piece must start the
number, the last must end it, and each piece in between is taken at its leftmost place after the
previous one. Leftmost is always right for such globs (any match can shift a middle piece to its
leftmost occurrence without breaking the rest), so no placement is ever revisited. Each middle
piece is an atomic group, ``(?>[0-9]*?piece)``, which commits to its first fit: the regular
expression engine cannot go back into it, so a match costs at most
O(len(number) * len(pattern)) steps, whatever the pattern.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from fragmenty_shared.contracts import Asset

MAX_PATTERN_LENGTH = 64
_NUMBER_PATTERN_CHARS = re.compile(r"^[0-9*?]+$")
_USERNAME_CHARS = re.compile(r"^[a-z0-9_]+$")
_IGNORED_IN_NUMBERS = re.compile(r"[\s+\-()]")
_STAR_RUNS = re.compile(r"\*+")
# What compile_pattern accepts for at least one asset, as one regular expression for API
# documents (a number pattern, or a username with an optional @); kept equal by a unit test.
PATTERN_SYNTAX = r"^([\s+\-()]*[0-9*?][0-9*?\s+\-()]*|\s*@*[A-Za-z0-9_]+\s*)$"


class PatternError(ValueError):
    """The pattern cannot be understood; the message says why, for the user."""


@dataclass(frozen=True)
class ListingPattern:
    """A compiled search pattern.

    ``text`` is the pattern in its normal form (numbers: digits, ``?`` and single ``*``;
    usernames: the lower-case name); ``regex`` is an equivalent plain regular expression for
    databases (anchored for numbers). ``matches(slug)`` is the fast, non-backtracking test (a
    plain function: it runs for every listing of a search and every event of a subscription).
    """

    asset: Asset
    text: str
    regex: str
    matches: Callable[[str], bool] = field(repr=False, compare=False)
    _lines: re.Pattern[str] = field(repr=False, compare=False)

    def matches_in(self, lines: str) -> set[str]:
        """The matching slugs among ``lines`` (slugs joined by newlines): one pass of the
        regular expression engine over all of them, where a search of the whole market would
        otherwise call :attr:`matches` once per listing. Slugs are never empty."""
        return set(self._lines.findall(lines)) if lines else set()


def _piece(piece: str) -> str:
    """A fixed-length piece between stars: digits stand for themselves, ``?`` for any digit."""
    return "".join("[0-9]" if char == "?" else char for char in piece)


def _number_matchers(normal: str) -> tuple[Callable[[str], bool], re.Pattern[str]]:
    """The test for a normalised number pattern (no star runs), see the module docstring, and
    the same as a multi-line expression for :meth:`ListingPattern.matches_in`."""
    pieces = normal.split("*")
    least = sum(len(piece) for piece in pieces)  # digits the pattern needs at the least
    # A number exactly that long leaves every star empty: one fixed-length comparison.
    exact = re.compile(_piece("".join(pieces)) + r"\Z").match
    if len(pieces) == 1:
        lines = re.compile(f"^{_piece(normal)}$", re.MULTILINE)
        return (lambda slug: len(slug) == least and exact(slug) is not None), lines
    first, *middle, last = pieces
    body = (
        _piece(first)
        + "".join(f"(?>[0-9]*?{_piece(piece)})" for piece in middle if piece)
        + f"[0-9]*{_piece(last)}"
    )
    anywhere = re.compile(body + r"\Z").match
    # The lookahead refuses a line too short for the pattern before any piece is tried.
    lines = re.compile(f"^(?=[0-9]{{{least}}}){body}$", re.MULTILINE)

    def test(slug: str) -> bool:
        slack = len(slug) - least
        if slack <= 0:
            return slack == 0 and exact(slug) is not None
        return anywhere(slug) is not None

    return test, lines


def _username_matcher(name: str) -> Callable[[str], bool]:
    def test(slug: str) -> bool:
        return name in slug

    return test


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
        normal = _STAR_RUNS.sub("*", digits)
        regex = "^" + "".join("[0-9]*" if char == "*" else _piece(char) for char in normal) + "$"
        return ListingPattern(asset, normal, regex, *_number_matchers(normal))
    name = text.strip().lstrip("@").lower()
    if not name:
        raise PatternError("username pattern is empty")
    if not _USERNAME_CHARS.match(name):
        raise PatternError("usernames contain only letters, digits and '_'")
    lines = re.compile(f"^[^\n]*?{re.escape(name)}[^\n]*$", re.MULTILINE)
    return ListingPattern(asset, name, re.escape(name), _username_matcher(name), lines)


def compile_for_assets(text: str, assets: Sequence[Asset]) -> dict[Asset, ListingPattern]:
    """``text`` compiled for each of ``assets`` whose syntax it fits: ``888*`` applies to numbers
    only, ``boris`` to usernames only. Raises :class:`PatternError` when it fits none, with each
    asset's reason when several were tried."""
    compiled: dict[Asset, ListingPattern] = {}
    errors: list[str] = []
    for asset in assets:
        try:
            compiled[asset] = compile_pattern(text, asset)
        except PatternError as error:
            errors.append(f"{asset.value}: {error}" if len(assets) > 1 else str(error))
    if not compiled:
        raise PatternError("; ".join(errors))
    return compiled
