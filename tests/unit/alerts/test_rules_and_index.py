"""Rules and the rule index: the index finds exactly what testing every rule finds."""

import random
from datetime import timedelta
from decimal import Decimal

import pytest
from pydantic import ValidationError

from fragmenty_alerts.durations import parse_duration
from fragmenty_alerts.index import RuleIndex, number_prefix
from fragmenty_alerts.rules import Rule, RuleSpec
from fragmenty_alerts.trust import refusal_reason
from fragmenty_shared.contracts import Asset, EventType, ListingSnapshot, ListingStatus
from tests.unit.notifier.factories import make_event


def rule(rule_id: str = "rl_1", **spec: object) -> Rule:
    return Rule.compile(rule_id, "acc_1", RuleSpec.model_validate(spec), "token")


def test_durations_read_as_people_write_them() -> None:
    assert parse_duration("90s") == 90
    assert parse_duration("2h") == 7200
    assert parse_duration("1h30m") == 5400
    assert parse_duration(600) == 600
    with pytest.raises(ValueError, match="cannot read"):
        parse_duration("soon")


def test_rule_spec_names_the_bad_field() -> None:
    with pytest.raises(ValidationError) as caught:
        RuleSpec.model_validate({"below_price_ton": "-5"})
    assert caught.value.errors()[0]["loc"] == ("below_price_ton",)
    with pytest.raises(ValidationError, match="not both"):
        RuleSpec.model_validate({"below_price_ton": "5", "above_price_ton": "9"})


def test_threshold_matches_only_at_the_level() -> None:
    below = rule(below_price_ton="100")
    assert below.matches(make_event(price="99", old_price="120"))
    assert below.matches(make_event(price="100", old_price="120"))
    assert not below.matches(make_event(price="101", old_price="120"))
    assert below.threshold is not None
    assert below.threshold.rearms(Decimal(105))
    assert not below.threshold.rearms(Decimal("104.9"))


def test_ending_within_needs_an_auction_ending_soon() -> None:
    ending = rule(ending_within="2h")
    event = make_event(price="10", old_price="9")
    soon = event.model_copy(
        update={
            "new": ListingSnapshot(
                status=ListingStatus.AUCTION,
                price_ton=Decimal(10),
                ends_at=event.occurred_at + timedelta(hours=1),
            )
        }
    )
    late = event.model_copy(
        update={
            "new": ListingSnapshot(
                status=ListingStatus.AUCTION,
                price_ton=Decimal(10),
                ends_at=event.occurred_at + timedelta(hours=3),
            )
        }
    )
    sale = event.model_copy(
        update={
            "new": ListingSnapshot(
                status=ListingStatus.SALE,
                price_ton=Decimal(10),
                ends_at=event.occurred_at + timedelta(hours=1),
            )
        }
    )
    assert ending.matches(soon)
    assert not ending.matches(late)
    assert not ending.matches(sale)


def test_number_prefix_stops_at_the_first_wildcard() -> None:
    assert number_prefix("+888 0?00 *") == "8880"
    assert number_prefix("*1234") == ""
    assert number_prefix("88800001234") == "88800001234"


def random_rules(count: int, seed: int) -> list[Rule]:
    chooser = random.Random(seed)
    rules = []
    for number in range(count):
        shape = chooser.randrange(6)
        spec: dict[str, object] = {}
        if shape == 0:
            spec["slugs"] = [f"8880000{chooser.randrange(10000):04d}"]
        elif shape == 1:
            spec["pattern"] = f"888{chooser.randrange(100):02d}*"
        elif shape == 2:
            spec["pattern"] = chooser.choice(["bor", "ton", "x", "crypto"])
        elif shape == 3:
            spec["below_price_ton"] = str(chooser.randrange(1, 5000))
            spec["assets"] = [chooser.choice(["number", "username"])]
        elif shape == 4:
            spec["types"] = [chooser.choice(list(EventType)).value]
            spec["min_price_ton"] = str(chooser.randrange(0, 1000))
            spec["max_price_ton"] = str(chooser.randrange(1000, 9000))
        else:
            spec["min_change_pct"] = chooser.randrange(1, 50)
        rules.append(rule(f"rl_{number}", **spec))
    return rules


def test_index_finds_exactly_what_testing_every_rule_finds() -> None:
    index = RuleIndex()
    for item in random_rules(600, seed=7):
        index.put(item)
    chooser = random.Random(11)
    for _ in range(400):
        if chooser.random() < 0.6:
            slug, asset = f"8880000{chooser.randrange(10000):04d}", Asset.NUMBER
        else:
            slug, asset = (
                chooser.choice(["boris", "tonkeeper", "xyz", "cryptoking", "anna"]),
                Asset.USERNAME,
            )
        event = make_event(
            slug,
            asset=asset,
            type=chooser.choice([EventType.PRICE_CHANGED, EventType.LISTED]),
            price=str(chooser.randrange(1, 9000)),
            old_price=str(chooser.randrange(1, 9000)),
            change_pct=chooser.choice([None, 5.0, 30.0]),
        )
        fast = sorted(r.rule_id for r in index.matching(event))
        slow = sorted(r.rule_id for r in index.matching_by_testing_every_rule(event))
        assert fast == slow
    assert len(index.candidates(make_event("88800001234", price="10"))) < len(index) / 3


def test_removed_and_replaced_rules_leave_the_index() -> None:
    index = RuleIndex()
    index.put(rule("rl_a", slugs=["88800001234"]))
    event = make_event("88800001234")
    assert [r.rule_id for r in index.matching(event)] == ["rl_a"]
    index.put(rule("rl_a", slugs=["88800009999"]))
    assert index.matching(event) == []
    index.remove("rl_a")
    assert len(index) == 0


def test_events_only_a_broken_crawl_could_make_are_refused() -> None:
    assert refusal_reason(make_event(price="100", old_price="100")) == "price_unchanged"
    assert refusal_reason(make_event(price="90", old_price="100")) is None
    assert refusal_reason(make_event(type=EventType.LISTED, old_price=None)) is None
    assert refusal_reason(make_event(type=EventType.DELISTED, price=None)) is None
    assert (
        refusal_reason(make_event(type=EventType.DELISTED, price=None, old_price=None))
        == "delisted_without_last_state"
    )
    assert (
        refusal_reason(make_event(type=EventType.SOLD, status=ListingStatus.AUCTION))
        == "sold_without_sold_state"
    )
