"""What a number or a username is made of, as named numeric features (pure functions).

Each feature has a readable name (the keys of :data:`NUMBER_FEATURES` and
:data:`USERNAME_FEATURES`, explained in docs/valuation.md); the estimator turns them into one
vector per listing, always in the order of those tables. Nothing here reads prices.
"""

from __future__ import annotations

import itertools
import re
from functools import lru_cache

from fragmenty_shared.contracts import Asset
from fragmenty_shared.memorability import assess_number
from fragmenty_shared.valuation.words import dictionary_words

PREFIX = "888"
NUMBER_FEATURES: dict[str, str] = {
    "short": "a 7-digit number (+888 8 080) rather than 11 digits",
    "memorability": "the original Fragmenty memorability score, 0..1",
    "longest_run": "longest run of one digit; 8s that join the 888 prefix count",
    "distinct_digits": "how many different digits follow 888",
    "repdigit": "every digit after 888 is the same",
    "aabb": "a block of two pairs (1122) somewhere",
    "abab": "two different digits alternating (1212) somewhere",
    "aaaabbbb": "four of one digit then four of another (0000 1111)",
    "repeated_half": "the second half repeats the first (1234 1234)",
    "ladder": "longest run stepping up or down by one (0123 -> 4); 0 below 3",
    "ends_x000": "trailing zeros (x000 -> 3); 0 below 2",
    "ends_x888": "trailing eights (x888 -> 3); 0 below 2",
    "palindrome": "the digits after 888 read the same backwards",
    "run8": "three or more 8s in a row after the prefix",
}
USERNAME_FEATURES: dict[str, str] = {
    "length": "letters, digits and underscores in the name",
    "digits": "how many digits the name has",
    "underscores": "how many underscores the name has",
    "repeated_letters": "letters equal to the one before (boss -> 1)",
    "is_word": "the whole name is a dictionary word",
    "word_coverage": "share of the name covered by dictionary words of 3+ letters",
    "pronounceability": "share of letters outside clusters of 3+ consonants or vowels",
}
FEATURE_NAMES: dict[Asset, tuple[str, ...]] = {
    Asset.NUMBER: tuple(NUMBER_FEATURES),
    Asset.USERNAME: tuple(USERNAME_FEATURES),
}

_VOWELS = frozenset("aeiouy")
_CLUSTER = re.compile(r"[bcdfghjklmnpqrstvwxz]{3,}|[aeiouy]{3,}")
_MIN_WORD = 3


def features_of(asset: Asset, slug: str) -> dict[str, float]:
    """The named features of ``slug``; raises ValueError when it is no such asset's slug."""
    if asset is Asset.NUMBER:
        return number_features(slug)
    return username_features(slug)


def feature_vector(asset: Asset, slug: str) -> tuple[float, ...]:
    """The features in the order of :data:`FEATURE_NAMES` (cached: slugs repeat a lot)."""
    return _cached_vector(asset, slug)


@lru_cache(maxsize=65_536)
def _cached_vector(asset: Asset, slug: str) -> tuple[float, ...]:
    named = features_of(asset, slug)
    return tuple(named[name] for name in FEATURE_NAMES[asset])


def number_features(slug: str) -> dict[str, float]:
    memorability = assess_number(slug)
    if memorability is None:
        raise ValueError(f"{slug!r} is not a number")
    digits = slug[len(PREFIX) :] if slug.startswith(PREFIX) else slug
    tags = set(memorability.tags)
    return {
        "short": float(len(slug) == 7),
        "memorability": memorability.score,
        "longest_run": float(longest_run(slug)),
        "distinct_digits": float(len(set(digits))),
        "repdigit": float("repdigit" in tags),
        "aabb": float(_has_aabb(digits)),
        "abab": float("abab" in tags),
        "aaaabbbb": float(_is_aaaabbbb(digits)),
        "repeated_half": float(_has_repeated_half(digits)),
        "ladder": float(ladder_length(digits)),
        "ends_x000": float(_trailing(digits, "0")),
        "ends_x888": float(_trailing(digits, "8")),
        "palindrome": float("palindrome" in tags),
        "run8": float("run8" in tags),
    }


def longest_run(slug: str) -> int:
    """Longest run of one digit after the prefix; a run of 8s that starts right after ``888``
    joins it (``888 8880 1234`` has a run of six)."""
    digits = slug[len(PREFIX) :] if slug.startswith(PREFIX) else slug
    best = max((len(match.group()) for match in re.finditer(r"(\d)\1*", digits)), default=0)
    leading_eights = len(digits) - len(digits.lstrip("8"))
    if slug.startswith(PREFIX) and leading_eights:
        best = max(best, len(PREFIX) + leading_eights)
    return best


def ladder_length(digits: str) -> int:
    """Longest stretch where each digit is one more (or one less) than the one before; runs
    shorter than three do not count (every pair of neighbours would be a ladder of two)."""
    best = 0
    for step in (1, -1):
        length = 1
        for before, after in itertools.pairwise(digits):
            length = length + 1 if int(after) - int(before) == step else 1
            best = max(best, length)
    return best if best >= 3 else 0


def _has_aabb(digits: str) -> bool:
    return any(
        digits[i] == digits[i + 1] != digits[i + 2] == digits[i + 3] for i in range(len(digits) - 3)
    )


def _is_aaaabbbb(digits: str) -> bool:
    first, second = digits[:4], digits[4:]
    return len(digits) == 8 and len(set(first)) == len(set(second)) == 1 and first != second


def _has_repeated_half(digits: str) -> bool:
    half = len(digits) // 2
    return len(digits) % 2 == 0 and len(set(digits)) > 1 and digits[:half] == digits[half:]


def _trailing(digits: str, digit: str) -> int:
    count = len(digits) - len(digits.rstrip(digit))
    return count if count >= 2 else 0


def username_features(slug: str) -> dict[str, float]:
    if not re.fullmatch(r"[a-z0-9_]{1,32}", slug):
        raise ValueError(f"{slug!r} is not a username")
    letters = re.sub(r"[^a-z]", "", slug)
    return {
        "length": float(len(slug)),
        "digits": float(sum(char.isdigit() for char in slug)),
        "underscores": float(slug.count("_")),
        "repeated_letters": float(sum(a == b and a.isalpha() for a, b in itertools.pairwise(slug))),
        "is_word": float(len(slug) >= _MIN_WORD and slug in dictionary_words()),
        "word_coverage": word_coverage(letters),
        "pronounceability": pronounceability(letters),
    }


def word_coverage(letters: str) -> float:
    """Share of ``letters`` that the best split into dictionary words (3+ letters) covers.

    Dynamic programming over positions: covered[i] is the most letters of ``letters[:i]`` that
    words can cover, a letter outside any word costing nothing but covering nothing.
    """
    if not letters:
        return 0.0
    words = dictionary_words()
    covered = [0] * (len(letters) + 1)
    for end in range(1, len(letters) + 1):
        covered[end] = covered[end - 1]
        for start in range(0, end - _MIN_WORD + 1):
            if letters[start:end] in words:
                covered[end] = max(covered[end], covered[start] + end - start)
    return round(covered[-1] / len(letters), 4)


def pronounceability(letters: str) -> float:
    """Share of letters not stuck in a cluster of three or more consonants or vowels ('strk')."""
    if not letters:
        return 0.0
    clustered = sum(len(match.group()) for match in _CLUSTER.finditer(letters))
    has_vowel = any(char in _VOWELS for char in letters)
    return round((len(letters) - clustered) / len(letters), 4) if has_vowel else 0.0
