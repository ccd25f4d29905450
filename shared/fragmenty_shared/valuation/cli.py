"""``fragmenty-valuation``: the valuation's command line (the walk-forward backtest)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from fragmenty_shared.contracts import Asset
from fragmenty_shared.settings import Settings
from fragmenty_shared.storage import make_mongo_client

if TYPE_CHECKING:
    from fragmenty_shared.valuation.backtest import BacktestReport


def _moment(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a date or time (ISO 8601, e.g. 2026-06-01)"
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fragmenty-valuation",
        description="Fair values of Fragment listings. See docs/valuation.md.",
        epilog="The database is read from FRAGMENTY_MONGODB_URL / FRAGMENTY_MONGODB_DATABASE.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser(
        "backtest",
        help="replay the stored sales in time order and score the estimates",
        description=(
            "Estimates every stored sale from the sales before it and prints the median "
            "absolute percentage error and the share of sales inside the 80 % band, for the "
            "estimator and for a naive baseline (median of the last sales with the same tags); "
            "then the same figures as one JSON line."
        ),
    )
    run.add_argument("--asset", type=Asset, choices=list(Asset), help="only numbers or usernames")
    run.add_argument(
        "--since",
        type=_moment,
        help="score only sales from this moment on (earlier ones are still learned from)",
    )
    return parser


async def _stored_backtest(arguments: argparse.Namespace) -> BacktestReport:
    # Imported here: scikit-learn takes a while to load, and --help or a typo need none of it.
    from fragmenty_shared.valuation.backtest import backtest
    from fragmenty_shared.valuation.reader import read_stored_sales

    settings = Settings()
    client = make_mongo_client(settings.mongodb_url)
    try:
        sales = await read_stored_sales(client[settings.mongodb_database])
    finally:
        await client.close()
    return await asyncio.to_thread(backtest, sales, asset=arguments.asset, since=arguments.since)


def main(argv: Sequence[str] | None = None) -> None:
    arguments = _parser().parse_args(argv)
    try:
        report = asyncio.run(_stored_backtest(arguments))
    except Exception as error:  # a clear message rather than a traceback for a user's mistake
        print(f"fragmenty-valuation: {error}", file=sys.stderr)
        raise SystemExit(1) from None
    if report.sales_estimated == 0:
        print(
            f"fragmenty-valuation: nothing to score: {report.sales_replayed} sales stored, "
            "and every sale needs earlier sales (at least 20 of its asset) to be estimated",
            file=sys.stderr,
        )
    print(report.as_text())
    print(json.dumps(report.as_json()))


if __name__ == "__main__":
    main()
