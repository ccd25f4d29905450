"""Event filters: what a subscriber asks for (the notifier's WebSocket clients, the alerts service's
rules), and the compiled test run for every event.

Every key is optional and keys combine with AND; a list key matches when the event has any of
the listed values. A filter that sets a bound on something an event does not carry (a
``min_change_pct`` on a ``listed`` event, a ``min_memorability`` on a username, a
``min_discount_pct`` on an event without a valuation) does not match that event: the client
asked for a property the event cannot prove.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from fragmenty_shared.contracts import Asset, EventType, PriceEvent, Slug, TonAmount
from fragmenty_shared.patterns import ListingPattern, compile_for_assets

MAX_SLUGS = 500
MAX_TAGS = 32

Tag = Annotated[str, Field(min_length=1, max_length=64)]


class SubscriptionFilter(BaseModel):
    """The ``filter`` of a subscribe frame, as the client wrote it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    assets: list[Asset] | None = Field(default=None, max_length=len(Asset))
    types: list[EventType] | None = Field(default=None, max_length=len(EventType))
    slugs: list[Slug] | None = Field(default=None, max_length=MAX_SLUGS)
    pattern: str | None = Field(default=None, min_length=1, max_length=64)
    min_price_ton: TonAmount | None = None
    max_price_ton: TonAmount | None = None
    min_change_pct: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    min_memorability: float | None = Field(default=None, ge=0, le=1, allow_inf_nan=False)
    min_discount_pct: float | None = Field(default=None, ge=-1000, le=100, allow_inf_nan=False)
    tags: list[Tag] | None = Field(default=None, max_length=MAX_TAGS)

    @model_validator(mode="after")
    def _price_bounds_in_order(self) -> SubscriptionFilter:
        if (
            self.min_price_ton is not None
            and self.max_price_ton is not None
            and self.min_price_ton > self.max_price_ton
        ):
            raise ValueError("min_price_ton is above max_price_ton")
        return self


def event_price(event: PriceEvent) -> Decimal | None:
    """The price an event is about: the new one, or the last known for a delisting."""
    snapshot = event.new or event.old
    return snapshot.price_ton if snapshot is not None else None


@dataclass(frozen=True, slots=True)
class EventFilter:
    """A compiled filter: sets for membership tests, one pattern per asset it can apply to."""

    assets: frozenset[Asset] | None
    types: frozenset[EventType] | None
    slugs: frozenset[str] | None
    patterns: dict[Asset, ListingPattern] | None
    min_price_ton: Decimal | None
    max_price_ton: Decimal | None
    min_change_pct: float | None
    min_memorability: float | None
    tags: frozenset[str] | None
    min_discount_pct: float | None = None
    everything: bool = False  # no key set: skip the checks (the common "all events" case)

    def matches(self, event: PriceEvent) -> bool:
        if self.everything:
            return True
        if self.assets is not None and event.asset not in self.assets:
            return False
        if self.types is not None and event.type not in self.types:
            return False
        if self.slugs is not None and event.slug not in self.slugs:
            return False
        if self.patterns is not None:
            pattern = self.patterns.get(event.asset)
            if pattern is None or not pattern.matches(event.slug):
                return False
        if self.min_price_ton is not None or self.max_price_ton is not None:
            price = event_price(event)
            if price is None:
                return False
            if self.min_price_ton is not None and price < self.min_price_ton:
                return False
            if self.max_price_ton is not None and price > self.max_price_ton:
                return False
        if self.min_change_pct is not None and (
            event.change_pct is None or abs(event.change_pct) < self.min_change_pct
        ):
            return False
        if self.min_memorability is not None and (
            event.memorability is None or event.memorability < self.min_memorability
        ):
            return False
        if self.min_discount_pct is not None and (
            event.valuation is None or event.valuation.discount_pct < self.min_discount_pct
        ):
            return False
        return self.tags is None or not self.tags.isdisjoint(event.tags)


def compile_filter(spec: SubscriptionFilter) -> EventFilter:
    """Compile a client's filter, or raise :class:`PatternError` for a pattern it cannot use.

    The pattern syntax depends on the asset (digits for numbers, a name for usernames), so the
    pattern is compiled for every asset the filter allows and kept where it compiles
    (:func:`~fragmenty_shared.patterns.compile_for_assets`).
    """
    patterns = (
        None
        if spec.pattern is None
        else compile_for_assets(spec.pattern, spec.assets or list(Asset))
    )
    return EventFilter(
        assets=frozenset(spec.assets) if spec.assets is not None else None,
        types=frozenset(spec.types) if spec.types is not None else None,
        slugs=frozenset(spec.slugs) if spec.slugs is not None else None,
        patterns=patterns,
        min_price_ton=spec.min_price_ton,
        max_price_ton=spec.max_price_ton,
        min_change_pct=spec.min_change_pct,
        min_memorability=spec.min_memorability,
        tags=frozenset(spec.tags) if spec.tags is not None else None,
        min_discount_pct=spec.min_discount_pct,
        everything=all(getattr(spec, key) is None for key in SubscriptionFilter.model_fields),
    )
