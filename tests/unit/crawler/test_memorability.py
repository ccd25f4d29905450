"""The memorability score (the original Fragmenty formula) and the pattern tags."""

import pytest

from fragmenty_shared.memorability import Memorability, assess_number, original_score


def test_usernames_and_malformed_slugs_have_no_memorability() -> None:
    assert assess_number("boris") is None
    assert assess_number("888123") is None
    assert assess_number("8881234567890123") is None


@pytest.mark.parametrize(
    ("digits", "score"),
    [
        # repeats 1*2, alternations (0000 twice -> one match of length 8) 2*2, mirrored 4: 10/16
        ("00000000", 0.625),
        # sequences: 0123 1234 2345 3456 4567 = 5; mirrored 0: 5/16
        ("01234567", 0.3125),
        # alternation 8080 -> 2*2 = 4 over 4 digits * 2 = 0.5
        ("8080", 0.5),
        # 888 is a repeat (2) and a run of 8 (1), 1234 a sequence (1), one mirrored pair: 5/16
        ("88812348", 0.3125),
        ("13572468", 0.0),
    ],
)
def test_original_score_components(digits: str, score: float) -> None:
    assert original_score(digits) == score


def test_the_score_is_capped_at_one_and_never_negative() -> None:
    for slug in ("88888888888", "88800000000", "8888888", "88801234567", "88897531864"):
        result = assess_number(slug)
        assert result is not None
        assert 0.0 <= result.score <= 1.0


def test_tags_name_what_a_person_sees() -> None:
    assert assess_number("8888080") == Memorability(0.5, ("short", "abab"))
    assert assess_number("88800000000") == Memorability(0.625, ("repdigit", "repeat", "palindrome"))
    eights = assess_number("88888888888")
    assert eights is not None
    assert eights.tags == ("repdigit", "repeat", "palindrome", "run8")
    sequence = assess_number("88801234567")
    assert sequence is not None
    assert sequence.tags == ("sequence",)
    assert assess_number("88812344321") is not None
    assert "palindrome" in assess_number("88812344321").tags  # type: ignore[union-attr]
    assert assess_number("88813572468") == Memorability(0.0, ())


def test_more_patterns_score_higher() -> None:
    plain = assess_number("88813572468")
    patterned = assess_number("88812121212")
    assert plain is not None
    assert patterned is not None
    assert patterned.score > plain.score
