"""``fragmenty-ingest dead-letters``: see, replay or drop what waits in ``ingest.listings.dlq``.

``list`` (the default) counts the waiting messages by reason, routing key and schema and shows
the first few; ``replay`` republishes them where they came from (once a new ingest understands
them, say); ``purge`` drops those known to be junk. Exit status 0 on success, 1 when RabbitMQ or
the queue is not there (one line on stderr), 2 for a wrong command line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Sequence
from typing import Any

import aiormq

from fragmenty_ingest.dead_letter_queue import (
    DEFAULT_MAX_HELD,
    DeadLetterQueue,
    DeadLetterQueueError,
    Sweep,
    open_dead_letter_queue,
)
from fragmenty_ingest.dead_letters import matches, render_summary, summarize
from fragmenty_shared.settings import Settings

PROG = "fragmenty-ingest dead-letters"
# A message replayed this many times and dead-lettered again is left alone unless asked: it
# keeps failing, and replaying it once more is a decision, not a habit.
DEFAULT_MAX_REPLAYS = 3


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="See, replay or drop the messages ingest (or RabbitMQ, after "
        "x-delivery-limit crashes) dead-lettered to ingest.listings.dlq (prefixed by "
        "FRAGMENTY_NAMESPACE; the broker is FRAGMENTY_RABBITMQ_URL).",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="{list,replay,purge}")
    listing = commands.add_parser("list", help="count them by reason and show the first few")
    listing.add_argument("--first", type=int, default=5, help="how many to show (default 5)")
    replay = commands.add_parser("replay", help="republish them where they came from")
    replay.add_argument("--reason", help="only this reason (its first word: invalid_row...)")
    replay.add_argument("--limit", type=_positive, help="at most this many")
    replay.add_argument(
        "--max-replays",
        type=_positive,
        default=DEFAULT_MAX_REPLAYS,
        help="leave those already replayed this many times (default %(default)s)",
    )
    purge = commands.add_parser("purge", help="drop them for good")
    purge.add_argument("--reason", required=True, help="the reason of those to drop")
    purge.add_argument("--yes", action="store_true", help="required: they cannot be brought back")
    for command in (listing, replay, purge):
        command.add_argument("--json", action="store_true", help="one JSON document on stdout")
        command.add_argument(
            "--max",
            type=_positive,
            default=DEFAULT_MAX_HELD,
            help="stop once this many to put back are held: they wait in memory until the "
            "pass ends (default %(default)s)",
        )
    return parser


def parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = build_parser()
    arguments = list(argv)
    if not arguments or (arguments[0].startswith("-") and arguments[0] not in ("-h", "--help")):
        arguments.insert(0, "list")
    parsed = parser.parse_args(arguments)
    if parsed.command == "purge" and not parsed.yes:
        parser.error("purge drops messages for good: add --yes")
    return parsed


async def run(arguments: argparse.Namespace, settings: Settings) -> dict[str, Any]:
    """Do the command; what it did, as plain data."""
    async with open_dead_letter_queue(settings) as queue:
        if arguments.command == "list":
            sweep = await queue.look(max_held=arguments.max)
            return {
                "queue": queue.name,
                **summarize(sweep.seen, first=arguments.first),
                **_stopped(sweep),
            }
        if arguments.command == "replay":
            sweep = await queue.replay(
                reason=arguments.reason,
                limit=arguments.limit,
                max_replays=arguments.max_replays,
                max_held=arguments.max,
            )
            # Those of the reason that replay() leaves alone, so that the operator knows.
            over = sum(
                1
                for letter in sweep.seen
                if matches(letter, arguments.reason)
                and letter.origin.replays >= arguments.max_replays
            )
            return {**_outcome(queue, sweep, "replayed"), "over_max_replays": over}
        sweep = await queue.purge(reason=arguments.reason, max_held=arguments.max)
        return _outcome(queue, sweep, "purged")


def _outcome(queue: DeadLetterQueue, sweep: Sweep, verb: str) -> dict[str, Any]:
    return {
        "queue": queue.name,
        verb: summarize(sweep.taken, first=0)["by_reason"],
        "left": sweep.left,
        **_stopped(sweep),
    }


def _stopped(sweep: Sweep) -> dict[str, Any]:
    """Where a pass cut short by ``--max`` stopped: after how many, of about how many."""
    if not sweep.stopped_early:
        return {}
    seen = len(sweep.seen)
    return {"stopped_at": seen, "of_about": max(seen, sweep.waiting_at_start)}


def _render_stopped(arguments: argparse.Namespace, outcome: dict[str, Any]) -> str:
    if "stopped_at" not in outcome:
        return ""
    return (
        f"stopped at {outcome['stopped_at']} of about {outcome['of_about']} "
        f"(--max {arguments.max}): the rest was not looked at"
    )


def render(arguments: argparse.Namespace, outcome: dict[str, Any]) -> str:
    stopped = _render_stopped(arguments, outcome)
    if arguments.command == "list":
        summary = render_summary(outcome["queue"], outcome)
        return f"{summary}\nthe listing {stopped}" if stopped else summary
    verb = "replayed" if arguments.command == "replay" else "purged"
    counts = outcome[verb]
    detail = f" ({', '.join(f'{k} {v}' for k, v in counts.items())})" if counts else ""
    text = f"{verb} {sum(counts.values())}{detail}; {outcome['left']} left in {outcome['queue']}"
    if outcome.get("over_max_replays"):
        text += (
            f"; {outcome['over_max_replays']} not replayed: already replayed "
            f"{arguments.max_replays} times (--max-replays)"
        )
    return f"{text}; {stopped}" if stopped else text


def main(argv: Sequence[str] | None = None) -> int:
    arguments = parse(sys.argv[1:] if argv is None else argv)
    # The AMQP libraries log a failed connection themselves; the error is said once, below.
    for library in ("aiormq", "aio_pika"):
        logging.getLogger(library).setLevel(logging.CRITICAL)
    try:
        outcome = asyncio.run(run(arguments, Settings()))
    except (DeadLetterQueueError, aiormq.exceptions.AMQPError, ConnectionError) as error:
        print(f"{PROG}: {error}", file=sys.stderr)
        return 1
    except TimeoutError:  # one the queue module did not put in words (a declare, an ack...)
        print(f"{PROG}: RabbitMQ did not answer in time (TimeoutError)", file=sys.stderr)
        return 1
    print(json.dumps(outcome) if arguments.json else render(arguments, outcome))
    return 0


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value
