"""What a simulated listing is truly worth: the simulator's hidden market model.

Every simulated listing gets a true value from what it looks like (a few traits, each with its
own premium) times a listing's own luck that no trait explains; asking prices, bids and sale
prices then scatter around that value. So a valuation backtest on the simulator has a known
answer. Fragmenty's estimator never reads this module: it must learn the premiums from the
sales, as it would on the real market. The traits here are written on their own, on purpose,
and do not match the estimator's features one to one.
"""

from __future__ import annotations

import itertools
import math
import random
import re
from decimal import Decimal

from fragmenty_shared.contracts import Asset

ORDINARY_NUMBER_TON = 320.0
FOUR_LETTER_NAME_TON = 18_000.0
LISTING_LUCK_SD = 0.35  # log-scale spread of what traits do not explain
SALE_SCATTER_SD = 0.2  # log-scale spread of one listing's sale prices around its value
_ENGLISH_SYLLABLES = ("ton", "gram", "coin", "max", "nova", "sky", "zen", "art", "dev", "bit")


def true_value_ton(asset: Asset, slug: str, rng: random.Random) -> float:
    """The hidden value of a new listing: traits, then the listing's own luck."""
    traits = _number_log_premium(slug) if asset is Asset.NUMBER else _name_log_premium(slug)
    return math.exp(traits + rng.gauss(0.0, LISTING_LUCK_SD))


def scattered(value_ton: float, rng: random.Random, *, bias: float = 0.0) -> Decimal:
    """One price around ``value_ton`` (a sale, an asking price), at least 1 TON, unrounded
    (the market rounds prices the way Fragment shows them)."""
    price = value_ton * math.exp(rng.gauss(bias, SALE_SCATTER_SD))
    return max(Decimal(repr(price)), Decimal(1))


def _number_log_premium(slug: str) -> float:
    digits = slug[3:]
    log_value = math.log(ORDINARY_NUMBER_TON)
    if len(digits) == 4:
        log_value += 2.6  # seven-digit numbers are rare
    longest = max(len(match.group()) for match in re.finditer(r"(\d)\1*", digits))
    log_value += 0.55 * max(longest - 2, 0)
    log_value -= 0.1 * (len(set(digits)) - 1)
    if digits == digits[::-1]:
        log_value += 0.7
    if re.search(r"(\d)(?!\1)(\d)\1\2", digits):
        log_value += 0.35
    log_value += 0.2 * max(_longest_climb(digits) - 2, 0)
    if digits.endswith("000"):
        log_value += 0.45
    if "888" in digits:
        log_value += 0.3
    return log_value


def _longest_climb(digits: str) -> int:
    """Most digits in a row going up by one, or down by one."""
    best = run = 1
    previous_step = 0
    for a, b in itertools.pairwise(digits):
        step = int(b) - int(a)
        run = (
            run + 1 if step in (1, -1) and step == previous_step else (2 if step in (1, -1) else 1)
        )
        previous_step = step
        best = max(best, run)
    return best


def _name_log_premium(slug: str) -> float:
    log_value = math.log(FOUR_LETTER_NAME_TON) - 0.5 * (len(slug) - 4)
    log_value -= 0.45 * sum(char.isdigit() for char in slug)
    log_value -= 0.8 * slug.count("_")
    if any(slug.startswith(part) or slug.endswith(part) for part in _ENGLISH_SYLLABLES):
        log_value += 0.5
    return log_value
