"""How a listing's history document is cut down: few, large archive blocks."""

from __future__ import annotations

from fragmenty_shared.listing_history import split_history


def rows(count: int) -> list[dict[str, int]]:
    return [{"seq": seq} for seq in range(1, count + 1)]


def seqs(blocks: list[list[dict[str, int]]]) -> list[list[int]]:
    return [[row["seq"] for row in block] for block in blocks]


def test_a_history_within_the_cap_stays_whole() -> None:
    kept, blocks = split_history(rows(200), 200)
    assert (len(kept), blocks) == (200, [])


def test_one_row_over_the_cap_moves_half_of_it_in_one_block() -> None:
    kept, blocks = split_history(rows(201), 200)
    assert [row["seq"] for row in kept] == list(range(102, 202))
    assert seqs(blocks) == [list(range(1, 102))]


def test_a_long_migrated_history_is_cut_into_blocks_no_larger_than_the_cap() -> None:
    kept, blocks = split_history(rows(1000), 200)
    assert [row["seq"] for row in kept] == list(range(901, 1001))
    assert [len(block) for block in blocks] == [200, 200, 200, 200, 100]
    assert [row["seq"] for block in blocks for row in block] == list(range(1, 901))
