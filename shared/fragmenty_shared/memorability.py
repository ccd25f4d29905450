"""How memorable a +888 number is: a score from 0 to 1 and named pattern tags.

Only numbers have a memorability; usernames get ``None``. The formula is documented in
docs/memorability.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Memorability:
    score: float  # 0 (forgettable) .. 1 (a repdigit)
    tags: tuple[str, ...]  # named patterns users filter on, e.g. ("repdigit", "short")


def assess_number(slug: str) -> Memorability | None:
    """The memorability of the number ``slug`` (digits only), or None when it is not a number."""
    if not re.fullmatch(r"[0-9]{7,15}", slug):
        return None
    digits = slug[3:] if slug.startswith("888") else slug
    tags: list[str] = []
    if len(slug) == 7:
        tags.append("short")
    if len(set(digits)) == 1:
        tags.append("repdigit")
    score = 1.0 if "repdigit" in tags else round(1 - (len(set(digits)) - 1) / 9, 4)
    return Memorability(score=max(0.0, min(1.0, score)), tags=tuple(tags))
