"""The rule index: an event is checked only against rules that could match it.

Rules are filed under the most selective key they have:

- rules naming ``slugs``: under each slug (one dictionary lookup per event);
- rules with a ``pattern``: numbers under the pattern's literal digit prefix (an event looks up
  each prefix of its number, at most 32), usernames under the substring they look for (an event
  looks up each substring of its name, at most 528);
- every other rule: under each (asset, type) it allows, and there by price band (powers of two
  of the TON price), so "below 50 TON" rules are not even looked at for a 3,000 TON listing.

Candidates are then checked in full by ``Rule.matches``; the index only narrows, it never
decides. ``all_rules`` is the "test every rule" baseline that the benchmark compares against.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from decimal import Decimal

from fragmenty_alerts.rules import Rule
from fragmenty_shared.contracts import Asset, EventType, PriceEvent
from fragmenty_shared.filters import event_price

_PATTERN_IGNORED = str.maketrans("", "", " +-()\t")
MAX_BAND = 40  # 2**40 TON is far beyond MAX_PRICE_TON


def price_band(price: Decimal) -> int:
    return min(int(price).bit_length(), MAX_BAND)


def number_prefix(pattern: str) -> str:
    """The digits a number pattern starts with before its first wildcard."""
    digits = pattern.translate(_PATTERN_IGNORED)
    for position, char in enumerate(digits):
        if char in "*?":
            return digits[:position]
    return digits


def rule_price_bounds(rule: Rule) -> tuple[Decimal | None, Decimal | None]:
    """The lowest and highest event price the rule can match (None: unbounded)."""
    spec = rule.spec
    lows = [bound for bound in (spec.min_price_ton, spec.above_price_ton) if bound is not None]
    highs = [bound for bound in (spec.max_price_ton, spec.below_price_ton) if bound is not None]
    return (max(lows) if lows else None, min(highs) if highs else None)


class _PriceBands:
    """Broad rules of one (asset, type): by price band, plus those that match any price."""

    def __init__(self) -> None:
        self.any_price: dict[str, Rule] = {}
        self.bands: list[dict[str, Rule]] = [{} for _ in range(MAX_BAND + 1)]

    def add(self, rule: Rule) -> None:
        low, high = rule_price_bounds(rule)
        if low is None and high is None:
            self.any_price[rule.rule_id] = rule
            return
        first = price_band(low) if low is not None else 0
        last = price_band(high) if high is not None else MAX_BAND
        for band in range(first, last + 1):
            self.bands[band][rule.rule_id] = rule

    def remove(self, rule: Rule) -> None:
        self.any_price.pop(rule.rule_id, None)
        for band in self.bands:
            band.pop(rule.rule_id, None)

    def candidates(self, price: Decimal | None) -> Iterable[Rule]:
        yield from self.any_price.values()
        if price is not None:
            yield from self.bands[price_band(price)].values()


class RuleIndex:
    """Every active rule of every account, filed for fast candidate lookup."""

    def __init__(self) -> None:
        self._rules: dict[str, Rule] = {}
        self._by_slug: defaultdict[str, dict[str, Rule]] = defaultdict(dict)
        self._by_number_prefix: defaultdict[str, dict[str, Rule]] = defaultdict(dict)
        self._by_username_part: defaultdict[str, dict[str, Rule]] = defaultdict(dict)
        self._broad: dict[tuple[Asset, EventType], _PriceBands] = {
            (asset, kind): _PriceBands() for asset in Asset for kind in EventType
        }

    def __len__(self) -> int:
        return len(self._rules)

    def get(self, rule_id: str) -> Rule | None:
        return self._rules.get(rule_id)

    def all_rules(self) -> Iterable[Rule]:
        return self._rules.values()

    def put(self, rule: Rule) -> None:
        """Add a rule, or replace the one with its id."""
        self.remove(rule.rule_id)
        self._rules[rule.rule_id] = rule
        if rule.filter.slugs is not None:
            for slug in rule.filter.slugs:
                self._by_slug[slug][rule.rule_id] = rule
        elif rule.filter.patterns is not None and rule.spec.pattern is not None:
            for asset in rule.filter.patterns:
                if asset is Asset.NUMBER:
                    self._by_number_prefix[number_prefix(rule.spec.pattern)][rule.rule_id] = rule
                else:
                    part = rule.spec.pattern.strip().lstrip("@").lower()
                    self._by_username_part[part][rule.rule_id] = rule
        else:
            for asset in rule.filter.assets or Asset:
                for kind in rule.filter.types or EventType:
                    self._broad[(asset, kind)].add(rule)

    def remove(self, rule_id: str) -> None:
        rule = self._rules.pop(rule_id, None)
        if rule is None:
            return
        for table in (self._by_slug, self._by_number_prefix, self._by_username_part):
            for key in [key for key, rules in table.items() if rule_id in rules]:
                del table[key][rule_id]
                if not table[key]:
                    del table[key]
        for bands in self._broad.values():
            bands.remove(rule)

    def replace_all(self, rules: Iterable[Rule]) -> None:
        fresh = RuleIndex()
        for rule in rules:
            fresh.put(rule)
        self.__dict__.update(fresh.__dict__)

    def candidates(self, event: PriceEvent) -> dict[str, Rule]:
        """Rules that might match ``event`` (a superset of those that do), by id."""
        found: dict[str, Rule] = {}
        slug = event.slug
        found.update(self._by_slug.get(slug, {}))
        if event.asset is Asset.NUMBER:
            for end in range(len(slug) + 1):
                found.update(self._by_number_prefix.get(slug[:end], {}))
        elif self._by_username_part:
            parts = {
                slug[start:end]
                for start in range(len(slug))
                for end in range(start + 1, len(slug) + 1)
            }
            for part in parts:
                found.update(self._by_username_part.get(part, {}))
        for rule in self._broad[(event.asset, event.type)].candidates(event_price(event)):
            found[rule.rule_id] = rule
        return found

    def matching(self, event: PriceEvent) -> list[Rule]:
        """The rules whose stateless part matches ``event``."""
        return [rule for rule in self.candidates(event).values() if rule.matches(event)]

    def matching_by_testing_every_rule(self, event: PriceEvent) -> list[Rule]:
        """The baseline: every rule tested in turn (same result as :meth:`matching`)."""
        return [rule for rule in self._rules.values() if rule.matches(event)]
