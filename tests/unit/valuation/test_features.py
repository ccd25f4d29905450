"""Every valuation feature on hand-picked numbers and usernames."""

import pytest

from fragmenty_shared.contracts import Asset
from fragmenty_shared.valuation.features import (
    FEATURE_NAMES,
    NUMBER_FEATURES,
    USERNAME_FEATURES,
    feature_vector,
    features_of,
    ladder_length,
    longest_run,
    number_features,
    pronounceability,
    username_features,
    word_coverage,
)


def test_every_feature_has_a_readable_description_and_a_place_in_the_vector() -> None:
    assert set(number_features("88812345678")) == set(NUMBER_FEATURES)
    assert set(username_features("boris")) == set(USERNAME_FEATURES)
    assert all(len(text) > 10 for text in [*NUMBER_FEATURES.values(), *USERNAME_FEATURES.values()])
    assert len(feature_vector(Asset.NUMBER, "8888080")) == len(FEATURE_NAMES[Asset.NUMBER])
    assert feature_vector(Asset.USERNAME, "boris") == tuple(
        username_features("boris")[name] for name in FEATURE_NAMES[Asset.USERNAME]
    )


@pytest.mark.parametrize(
    ("slug", "short"), [("8888080", 1.0), ("88800001234", 0.0), ("88812345678", 0.0)]
)
def test_short_is_a_seven_digit_number(slug: str, short: float) -> None:
    assert number_features(slug)["short"] == short


@pytest.mark.parametrize(
    ("slug", "run"),
    [
        ("88812345670", 1),
        ("88811123456", 3),
        ("88800000000", 8),
        ("88888801234", 6),  # 888 + 888: the prefix's eights join the run
        ("88818881234", 3),  # a run of 8s away from the prefix counts alone
        ("8888080", 4),
    ],
)
def test_longest_run_counts_eights_that_join_the_prefix(slug: str, run: int) -> None:
    assert longest_run(slug) == run
    assert number_features(slug)["longest_run"] == run


@pytest.mark.parametrize(
    ("slug", "distinct"), [("88800000000", 1), ("88812121212", 2), ("88801234567", 8)]
)
def test_distinct_digits(slug: str, distinct: int) -> None:
    assert number_features(slug)["distinct_digits"] == distinct


def test_repeated_blocks() -> None:
    aabb = number_features("88811223344")
    assert (aabb["aabb"], aabb["abab"], aabb["aaaabbbb"], aabb["repeated_half"]) == (1, 0, 0, 0)
    abab = number_features("88812121212")
    assert (abab["abab"], abab["aabb"], abab["repeated_half"]) == (1, 0, 1)
    blocks = number_features("88800001111")
    assert (blocks["aaaabbbb"], blocks["aabb"]) == (1, 1)
    half = number_features("88812341234")
    assert (half["repeated_half"], half["aaaabbbb"]) == (1, 0)
    # A repdigit is not "four of one then four of another", nor a repeated half.
    same = number_features("88877777777")
    assert (same["repdigit"], same["aaaabbbb"], same["repeated_half"]) == (1, 0, 0)


@pytest.mark.parametrize(
    ("digits", "ladder"),
    [
        ("01234567", 8),
        ("98765432", 8),
        ("12350000", 3),
        ("13572468", 0),
        ("12", 0),
        ("9013", 0),
        ("9012", 3),
    ],
)
def test_ladders_step_by_one_and_start_at_three(digits: str, ladder: int) -> None:
    assert ladder_length(digits) == ladder


def test_endings() -> None:
    assert number_features("88812345000")["ends_x000"] == 3
    assert number_features("88812345600")["ends_x000"] == 2
    assert number_features("88812345670")["ends_x000"] == 0
    assert number_features("88812345888")["ends_x888"] == 3
    assert number_features("88812345678")["ends_x888"] == 0


def test_palindromes_repdigits_and_runs_of_eight_follow_the_tags() -> None:
    assert number_features("88812344321")["palindrome"] == 1
    assert number_features("88812345678")["palindrome"] == 0
    assert number_features("88855555555")["repdigit"] == 1
    assert number_features("88818881234")["run8"] == 1
    assert number_features("88812345678")["memorability"] == 0.3125  # docs/memorability.md


def test_usernames_length_digits_underscores_and_repeats() -> None:
    found = username_features("cool_99")
    assert (found["length"], found["digits"], found["underscores"]) == (7, 2, 1)
    assert username_features("boss")["repeated_letters"] == 1
    assert username_features("zzzz")["repeated_letters"] == 3
    assert username_features("boris")["repeated_letters"] == 0


def test_dictionary_words() -> None:
    assert username_features("crown")["is_word"] == 1
    assert username_features("boris")["is_word"] == 0  # names are not dictionary words
    assert word_coverage("crownjewel") == 1.0
    assert word_coverage("xqzvwk") == 0.0
    assert 0 < word_coverage("crownxqz") < 1


def test_pronounceability() -> None:
    assert pronounceability("banana") == 1.0
    assert pronounceability("xkcdqz") == 0.0  # no vowel at all
    assert pronounceability("strngly") < pronounceability("strongly")
    assert username_features("12345")["pronounceability"] == 0.0


def test_a_slug_of_the_wrong_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="not a number"):
        features_of(Asset.NUMBER, "boris")
    with pytest.raises(ValueError, match="not a username"):
        features_of(Asset.USERNAME, "Boris!")
