"""The shared search patterns: the non-backtracking matcher agrees with a plain reference.

The reference is the textbook dynamic programme over (pattern position, number position): slow
but obviously right. Hypothesis compares both over generated patterns and numbers, including
the star runs and near misses that made the old regular expressions backtrack.
"""

from __future__ import annotations

import re
from functools import cache

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from fragmenty_shared.contracts import Asset
from fragmenty_shared.patterns import (
    MAX_PATTERN_LENGTH,
    PATTERN_SYNTAX,
    PatternError,
    compile_for_assets,
    compile_pattern,
)


def reference_match(pattern: str, slug: str) -> bool:
    """``*`` any run of digits, ``?`` one digit, a digit itself; the whole slug must match."""

    @cache
    def fits(p: int, s: int) -> bool:
        if p == len(pattern):
            return s == len(slug)
        char = pattern[p]
        if char == "*":
            return fits(p + 1, s) or (s < len(slug) and slug[s] in DIGITS and fits(p, s + 1))
        if s == len(slug) or slug[s] not in DIGITS:
            return False
        return (char == "?" or char == slug[s]) and fits(p + 1, s + 1)

    return fits(0, 0)


DIGITS = "0123456789"
# Few distinct digits, so that pieces recur and near misses are common.
number_patterns = st.text(alphabet="01*?", min_size=1, max_size=MAX_PATTERN_LENGTH)
numbers = st.text(alphabet="012", min_size=0, max_size=14)


@given(pattern=number_patterns, slug=numbers)
@example(pattern="**********1", slug="0000000000000")
@example(pattern="*0*0*", slug="00")
@example(pattern="*0*0*", slug="0")
@example(pattern="0*0", slug="0")
@example(pattern="*?0", slug="0")
@example(pattern="*01*0", slug="0101")
def test_the_matcher_agrees_with_the_reference(pattern: str, slug: str) -> None:
    assert compile_pattern(pattern, Asset.NUMBER).matches(slug) is reference_match(pattern, slug)


@given(pattern=number_patterns, slug=st.text(alphabet="01a٣ ", max_size=8))
def test_a_number_pattern_never_matches_other_characters(pattern: str, slug: str) -> None:
    """Stars and question marks stand for ASCII digits only, as in the reference."""
    assert compile_pattern(pattern, Asset.NUMBER).matches(slug) is reference_match(pattern, slug)


@given(pattern=number_patterns)
def test_the_database_regex_means_the_same(pattern: str) -> None:
    compiled = compile_pattern(pattern, Asset.NUMBER)
    for slug in ("", "0", "01", "0110", "10001", "88800001111"):
        assert (re.search(compiled.regex, slug) is not None) is compiled.matches(slug)


def test_runs_of_stars_collapse() -> None:
    assert compile_pattern("88**7***", Asset.NUMBER).text == "88*7*"
    assert compile_pattern("*" * 64, Asset.NUMBER).regex == "^[0-9]*$"


@pytest.mark.parametrize(
    ("pattern", "slug", "matches"),
    [
        ("*7777", "88800007777", True),
        ("*7777", "88800007770", False),
        ("888 0???", "8880123", True),
        ("888 0???", "88801234567", False),
        ("+888 8 080", "8888080", True),
        ("888*77*1", "88812773451", True),
        ("888*77*1", "88812777", False),
        ("*", "88800001234", True),
    ],
)
def test_number_patterns(pattern: str, slug: str, matches: bool) -> None:
    assert compile_pattern(pattern, Asset.NUMBER).matches(slug) is matches


def test_username_patterns_are_substrings() -> None:
    assert compile_pattern("@Bor", Asset.USERNAME).matches("boris")
    assert not compile_pattern("bor", Asset.USERNAME).matches("bo_r")


@pytest.mark.parametrize(
    ("text", "asset", "message"),
    [
        ("88a", Asset.NUMBER, "only digits"),
        ("١٢٣", Asset.NUMBER, "only digits"),
        (" + ", Asset.NUMBER, "empty"),
        ("*" * 65, Asset.NUMBER, "longer than 64"),
        ("bo*", Asset.USERNAME, "only letters"),
        ("@", Asset.USERNAME, "empty"),
    ],
)
def test_bad_patterns_say_why(text: str, asset: Asset, message: str) -> None:
    with pytest.raises(PatternError, match=message):
        compile_pattern(text, asset)


def test_a_pattern_applies_to_the_assets_whose_syntax_it_fits() -> None:
    assert compile_for_assets("888*", list(Asset)).keys() == {Asset.NUMBER}
    assert compile_for_assets("@boris", list(Asset)).keys() == {Asset.USERNAME}
    assert compile_for_assets("1234", list(Asset)).keys() == {Asset.NUMBER, Asset.USERNAME}
    with pytest.raises(PatternError, match=r"^number: .*digits.*; username: .*letters"):
        compile_for_assets("!!", list(Asset))
    with pytest.raises(PatternError, match=r"^number patterns may contain only digits"):
        compile_for_assets("bo", [Asset.NUMBER])  # one asset asked for: no need to name it


def compiles_for_some_asset(text: str) -> bool:
    for asset in Asset:
        try:
            compile_pattern(text, asset)
        except PatternError:
            continue
        return True
    return False


@given(
    text=st.text(alphabet="09*?@aZ_ +-()\n\t!.é١", max_size=12)
    | st.from_regex(PATTERN_SYNTAX).filter(lambda text: len(text) <= MAX_PATTERN_LENGTH)
)
@example(text=" + ")
@example(text="@")
@example(text="@@boris ")
def test_the_documented_syntax_is_what_compiles(text: str) -> None:
    """The API documents PATTERN_SYNTAX; the server must accept exactly those patterns."""
    assert (re.match(PATTERN_SYNTAX, text) is not None) is compiles_for_some_asset(text)


@given(
    pattern=number_patterns,
    slugs=st.lists(numbers.filter(bool), max_size=30),
)
@example(pattern="*0*0*", slugs=["00", "0", "100"])
@example(pattern="*", slugs=[])
def test_matching_many_lines_at_once_agrees_with_one_at_a_time(
    pattern: str, slugs: list[str]
) -> None:
    compiled = compile_pattern(pattern, Asset.NUMBER)
    assert compiled.matches_in("\n".join(slugs)) == {s for s in slugs if compiled.matches(s)}


@given(
    name=st.text(alphabet="ab_1", min_size=1, max_size=4),
    slugs=st.lists(st.text(alphabet="ab_1", min_size=1, max_size=12), max_size=30),
)
def test_usernames_too(name: str, slugs: list[str]) -> None:
    compiled = compile_pattern(name, Asset.USERNAME)
    assert compiled.matches_in("\n".join(slugs)) == {s for s in slugs if compiled.matches(s)}
