"""Subscription filters: every key, their combination, and refusals of bad filters."""

from decimal import Decimal

import pytest
from pydantic import ValidationError

from fragmenty_shared.contracts import Asset, EventType
from fragmenty_shared.filters import SubscriptionFilter, compile_filter
from fragmenty_shared.patterns import PatternError

from .factories import make_event

NUMBER = make_event("88800001234", change_pct=50.0, memorability=0.9, tags=["repeating"])
USERNAME = make_event(
    "boris", asset=Asset.USERNAME, type=EventType.LISTED, price="20", old_price=None
)
DELISTED = make_event("88809999999", type=EventType.DELISTED, price=None, old_price="300")


def matches(spec: dict[str, object], event=NUMBER) -> bool:
    return compile_filter(SubscriptionFilter.model_validate(spec)).matches(event)


def test_an_empty_filter_matches_everything() -> None:
    assert matches({})
    assert matches({}, USERNAME)
    assert matches({}, DELISTED)


@pytest.mark.parametrize(
    ("spec", "number", "username"),
    [
        ({"assets": ["username"]}, False, True),
        ({"types": ["listed", "sold"]}, False, True),
        ({"slugs": ["88800001234"]}, True, False),
        ({"pattern": "888 0000 ????"}, True, False),
        ({"pattern": "BOR"}, False, True),
        ({"min_price_ton": "100"}, True, False),
        ({"max_price_ton": "20"}, False, True),
        ({"min_price_ton": "20", "max_price_ton": "150"}, True, True),
        ({"min_change_pct": 50}, True, False),
        ({"min_memorability": 0.9}, True, False),
        ({"tags": ["rare", "repeating"]}, True, False),
        ({"assets": ["number"], "min_change_pct": 51}, False, False),
    ],
)
def test_each_key_selects_what_it_names(spec: dict[str, object], number: bool, username: bool):
    assert matches(spec, NUMBER) is number
    assert matches(spec, USERNAME) is username


def test_change_is_compared_in_absolute_terms() -> None:
    drop = make_event("88800005555", change_pct=-40.0)
    assert matches({"min_change_pct": 40}, drop)
    assert not matches({"min_change_pct": 40.5}, drop)


def test_a_delisting_is_priced_at_its_last_known_price() -> None:
    assert matches({"min_price_ton": "300"}, DELISTED)
    assert not matches({"max_price_ton": Decimal("299.999999999")}, DELISTED)


def test_a_number_pattern_does_not_apply_to_usernames_and_vice_versa() -> None:
    compiled = compile_filter(SubscriptionFilter(pattern="888*"))
    assert compiled.patterns is not None
    assert set(compiled.patterns) == {Asset.NUMBER}


@pytest.mark.parametrize(
    "spec",
    [
        {"assets": ["planet"]},
        {"types": ["exploded"]},
        {"slugs": ["Not A Slug!"]},
        {"min_price_ton": "-1"},
        {"min_price_ton": "1.0000000001"},
        {"min_price_ton": "5", "max_price_ton": "4"},
        {"min_memorability": 2},
        {"min_change_pct": "nan"},
        {"colour": "red"},
    ],
)
def test_malformed_filters_are_refused(spec: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        SubscriptionFilter.model_validate(spec)


def test_a_pattern_that_fits_no_asset_is_refused() -> None:
    with pytest.raises(PatternError):
        compile_filter(SubscriptionFilter(pattern="*!*"))
    with pytest.raises(PatternError):
        compile_filter(SubscriptionFilter(pattern="888*", assets=[Asset.USERNAME]))


def test_only_a_filter_without_keys_takes_the_shortcut() -> None:
    assert compile_filter(SubscriptionFilter()).everything
    assert compile_filter(SubscriptionFilter.model_validate({"assets": None})).everything
    assert not compile_filter(SubscriptionFilter(tags=["round"])).everything


def test_min_discount_pct_asks_for_a_listing_under_its_fair_value() -> None:
    from fragmenty_shared.contracts import EventValuation

    def valued(discount: float):
        valuation = EventValuation(
            fair_value_ton=Decimal(500),
            low_ton=Decimal(400),
            high_ton=Decimal(650),
            discount_pct=discount,
            confidence=0.5,
        )
        return NUMBER.model_copy(update={"valuation": valuation})

    assert matches({"min_discount_pct": 30}, valued(70.0))
    assert matches({"min_discount_pct": 30}, valued(30.0))
    assert not matches({"min_discount_pct": 30}, valued(29.9))
    assert not matches({"min_discount_pct": 30}, valued(-50.0))
    assert not matches({"min_discount_pct": 0}, NUMBER)  # no valuation: cannot prove a deal
    assert matches({"min_discount_pct": -20}, valued(-10.0))  # "at most 20 % over"
    with pytest.raises(ValidationError):
        SubscriptionFilter.model_validate({"min_discount_pct": 101})
