"""How memorable a +888 number is: the original Fragmenty score (0..1) and named pattern tags.

Only numbers have a memorability; usernames get ``None``. The formula and the tags are
documented in docs/memorability.md; in short, over the digits after the ``888`` prefix::

    score = min(1, (2*repeats + sequences + 2*alternations + mirrored + runs_of_8) / (2 * digits))

which is the score the original Fragmenty tracker showed, kept so that scores stay comparable.
The tags name what a person sees in the number, so users can filter on them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_NUMBER = re.compile(r"[0-9]{7,15}")
_REPEAT = re.compile(r"([0-9])\1{2,}")  # three or more of one digit in a row
_ALTERNATION = re.compile(r"([0-9]{2})\1+")  # a digit pair repeated: 1212, 0000, 565656
_ABAB = re.compile(r"([0-9])(?!\1)([0-9])\1\2")  # two different digits alternating
_RUN_OF_8 = re.compile(r"8{3,}")
_ASCENDING = "0123456789012"  # wraps around: 9012 counts as a sequence
_DESCENDING = "9876543210987"
SEQUENCE_LENGTH = 4

# Weights of the original score; the divisor is the largest weight times the number of digits.
WEIGHTS = {"repeats": 2, "sequences": 1, "alternations": 2, "mirrored": 1, "runs_of_8": 1}


@dataclass(frozen=True)
class Memorability:
    score: float  # 0 (forgettable) .. 1
    tags: tuple[str, ...]  # named patterns users filter on, e.g. ("repdigit", "short")


def assess_number(slug: str) -> Memorability | None:
    """The memorability of the number ``slug`` (digits only), or None when it is not a number."""
    if not _NUMBER.fullmatch(slug):
        return None
    digits = slug[3:] if slug.startswith("888") else slug
    return Memorability(score=original_score(digits), tags=pattern_tags(slug, digits))


def original_score(digits: str) -> float:
    """The original Fragmenty score of the digits after ``888``, rounded to four places."""
    components = {
        "repeats": len(_REPEAT.findall(digits)),
        "sequences": _sequence_windows(digits),
        # Each alternation counts twice: the original counted the pair's length (2).
        "alternations": 2 * len(_ALTERNATION.findall(digits)),
        "mirrored": sum(digits[i] == digits[-1 - i] for i in range(len(digits) // 2)),
        "runs_of_8": len(_RUN_OF_8.findall(digits)),
    }
    total = sum(WEIGHTS[name] * count for name, count in components.items())
    score = total / (len(digits) * max(WEIGHTS.values()))
    return round(min(score, 1.0), 4)


def pattern_tags(slug: str, digits: str) -> tuple[str, ...]:
    """Named patterns, in a fixed order."""
    found = {
        "short": len(slug) == 7,
        "repdigit": len(set(digits)) == 1,
        "repeat": _REPEAT.search(digits) is not None,
        "sequence": _sequence_windows(digits) > 0,
        "abab": _ABAB.search(digits) is not None,
        "palindrome": digits == digits[::-1],
        "run8": _RUN_OF_8.search(digits) is not None,
    }
    return tuple(name for name, present in found.items() if present)


def _sequence_windows(digits: str) -> int:
    """How many 4-digit windows run up or down by one (0123, 8901, 6543...)."""
    windows = (digits[i : i + SEQUENCE_LENGTH] for i in range(len(digits) - SEQUENCE_LENGTH + 1))
    return sum(1 for window in windows if window in _ASCENDING or window in _DESCENDING)
