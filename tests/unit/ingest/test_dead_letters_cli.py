"""The dead-letters command line: ``list`` by default, ``purge`` only with ``--yes``, and what a
replay or purge says it did."""

from __future__ import annotations

import pytest

from fragmenty_ingest.dead_letters_cli import DEFAULT_MAX_REPLAYS, parse, render


def test_list_is_the_default_command() -> None:
    assert parse([]).command == "list"
    arguments = parse(["--json"])
    assert (arguments.command, arguments.json, arguments.first) == ("list", True, 5)


def test_replay_takes_a_reason_a_limit_and_a_replay_ceiling() -> None:
    arguments = parse(["replay", "--reason", "invalid_row", "--limit", "10"])
    assert (arguments.reason, arguments.limit, arguments.max_replays) == (
        "invalid_row",
        10,
        DEFAULT_MAX_REPLAYS,
    )
    assert parse(["replay"]).reason is None


@pytest.mark.parametrize(
    "argv",
    [
        ["purge", "--reason", "not_json"],  # no --yes
        ["purge", "--yes"],  # no reason
        ["replay", "--limit", "0"],
        ["forget"],
    ],
)
def test_wrong_command_lines_exit_with_2(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        parse(argv)
    assert stopped.value.code == 2


def test_a_replay_says_what_it_did_and_what_it_left_alone() -> None:
    arguments = parse(["replay", "--max-replays", "2"])
    outcome = {
        "queue": "ingest.listings.dlq",
        "replayed": {"invalid_row": 2, "not_json": 1},
        "left": 4,
        "over_max_replays": 1,
    }
    assert render(arguments, outcome) == (
        "replayed 3 (invalid_row 2, not_json 1); 4 left in ingest.listings.dlq; "
        "1 not replayed: already replayed 2 times (--max-replays)"
    )


def test_a_purge_of_nothing_says_so() -> None:
    arguments = parse(["purge", "--reason", "x", "--yes"])
    outcome = {"queue": "q", "purged": {}, "left": 0}
    assert render(arguments, outcome) == "purged 0; 0 left in q"


def test_a_pass_cut_short_by_max_says_where_it_stopped() -> None:
    arguments = parse(["purge", "--reason", "x", "--yes", "--max", "2"])
    outcome = {"queue": "q", "purged": {"x": 1}, "left": 2, "stopped_at": 3, "of_about": 9}
    assert render(arguments, outcome) == (
        "purged 1 (x 1); 2 left in q; stopped at 3 of about 9 (--max 2): the rest was not looked at"
    )
    listing = parse(["--max", "3"])
    summary = {"queue": "q", "waiting": 3, "by_reason": {}, "by_routing_key": {}}
    summary |= {"by_schema": {}, "replayed_before": 0, "first": []}
    assert render(listing, {**summary, "stopped_at": 3, "of_about": 9}).splitlines() == [
        "3 dead letters waiting in q",
        "the listing stopped at 3 of about 9 (--max 3): the rest was not looked at",
    ]


def test_max_defaults_to_a_bound_for_every_command() -> None:
    assert parse([]).max == parse(["replay"]).max == 10_000
