"""Alert rules: what an account asks to be told about, and the compiled form matching runs on.

A rule is the notifier's subscription filter (the same keys, the same implementation in
``fragmenty_shared.filters``) plus what makes a saved alert useful and not spammy: an auction
ending soon, price thresholds with hysteresis, a cooldown per listing, a daily cap and a digest.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Annotated

from pydantic import Field, model_validator

from fragmenty_alerts.durations import DurationSeconds
from fragmenty_shared.contracts import ListingStatus, PriceEvent, TonAmount
from fragmenty_shared.filters import EventFilter, SubscriptionFilter, compile_filter, event_price

MAX_CHANNELS_PER_RULE = 20
ChannelId = Annotated[str, Field(pattern=r"^ch_[a-z0-9]{8,32}$")]


class DeliveryMode(StrEnum):
    INSTANT = "instant"  # one message per matching event
    DIGEST = "digest"  # one message per period with everything that matched in it


class RuleSpec(SubscriptionFilter):
    """A rule as its owner writes it (``POST /api/v1/alerts/rules``); every key is optional."""

    name: str | None = Field(default=None, max_length=100, description="A label for people.")
    ending_within: DurationSeconds | None = Field(
        default=None,
        description="Only auctions that end within this time of the event ('2h', 7200).",
    )
    below_price_ton: TonAmount | None = Field(
        default=None,
        description="Fire when the price falls to or below this; re-arm per the rearm settings.",
    )
    above_price_ton: TonAmount | None = Field(
        default=None,
        description="Fire when the price rises to or above this; re-arm per the rearm settings.",
    )
    rearm_margin_pct: float = Field(
        default=5.0,
        ge=0,
        le=100,
        allow_inf_nan=False,
        description=(
            "A threshold re-arms once the price is back past it by this margin (a 'below 100' "
            "rule with 5 % re-arms at 105 or more), so wobbles around it do not fire again."
        ),
    )
    rearm_after: DurationSeconds | None = Field(
        default=None, description="Also re-arm a threshold this long after it fired."
    )
    cooldown: DurationSeconds = Field(
        default=600, description="Least time between two alerts of this rule about one listing."
    )
    daily_cap: int | None = Field(
        default=100, ge=1, le=10_000, description="Most alerts of this rule per UTC day."
    )
    mode: DeliveryMode = Field(default=DeliveryMode.INSTANT)
    digest_every: DurationSeconds = Field(
        default=3600, description="Period of a digest rule (one message per period)."
    )
    channels: list[ChannelId] | None = Field(
        default=None,
        max_length=MAX_CHANNELS_PER_RULE,
        description="Channels to deliver to; null means every channel of the account.",
    )
    paused: bool = False

    @model_validator(mode="after")
    def _coherent(self) -> RuleSpec:
        if self.below_price_ton is not None and self.above_price_ton is not None:
            raise ValueError("set below_price_ton or above_price_ton, not both")
        if self.mode is DeliveryMode.DIGEST and self.digest_every < 60:
            raise ValueError("digest_every must be at least 60 seconds")
        return self


class RuleChange(RuleSpec):
    """``PATCH``: the same keys; only those sent change."""


@dataclass(frozen=True, slots=True)
class Threshold:
    """A price level with hysteresis: fires at the level, re-arms past it by a margin."""

    level: Decimal
    below: bool  # True: fires at or below the level; False: at or above
    rearm_level: Decimal
    rearm_after_s: int | None

    @classmethod
    def of(cls, spec: RuleSpec) -> Threshold | None:
        margin = Decimal(str(spec.rearm_margin_pct)) / 100
        if spec.below_price_ton is not None:
            level = spec.below_price_ton
            return cls(level, True, level * (1 + margin), spec.rearm_after)
        if spec.above_price_ton is not None:
            level = spec.above_price_ton
            return cls(level, False, level * (1 - margin), spec.rearm_after)
        return None

    def reached(self, price: Decimal) -> bool:
        return price <= self.level if self.below else price >= self.level

    def rearms(self, price: Decimal) -> bool:
        return price >= self.rearm_level if self.below else price <= self.rearm_level


@dataclass(frozen=True, slots=True)
class Rule:
    """A stored rule, compiled: what the index and the gates need, nothing else."""

    rule_id: str
    account_id: str
    spec: RuleSpec
    filter: EventFilter
    threshold: Threshold | None
    feed_token: str

    @classmethod
    def compile(cls, rule_id: str, account_id: str, spec: RuleSpec, feed_token: str) -> Rule:
        """Raises ``PatternError`` for a pattern that cannot apply to the rule's assets."""
        keys = SubscriptionFilter.model_fields
        filter_spec = SubscriptionFilter.model_validate(
            {key: getattr(spec, key) for key in keys if getattr(spec, key) is not None}
        )
        return cls(
            rule_id, account_id, spec, compile_filter(filter_spec), Threshold.of(spec), feed_token
        )

    @property
    def stateful(self) -> bool:
        """Whether firing depends on earlier firings about the same listing."""
        return self.threshold is not None or self.spec.cooldown > 0

    def matches(self, event: PriceEvent) -> bool:
        """The stateless part: filter keys, ending_within, and "the price is at the level".

        Whether a threshold is armed, the cooldown and the cap are the gates' business.
        """
        if self.spec.paused or not self.filter.matches(event):
            return False
        if self.spec.ending_within is not None and not ends_within(event, self.spec.ending_within):
            return False
        if self.threshold is not None:
            price = event_price(event) if event.new is not None else None
            if price is None or not self.threshold.reached(price):
                return False
        return True


def ends_within(event: PriceEvent, seconds: int) -> bool:
    """An auction (after the event) that ends within ``seconds`` of the event, and not before it."""
    snapshot = event.new
    if snapshot is None or snapshot.status is not ListingStatus.AUCTION or snapshot.ends_at is None:
        return False
    left = snapshot.ends_at - event.occurred_at
    return timedelta(0) < left <= timedelta(seconds=seconds)


def utc_day(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d")
