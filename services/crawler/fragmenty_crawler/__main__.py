"""``fragmenty-crawler``: ``run --once``, ``run --every SECONDS`` and ``parse FILE``."""

from __future__ import annotations

import argparse
import asyncio
import sys
from decimal import Decimal
from pathlib import Path

from fragmenty_crawler.views import ALL_VIEWS, parse_views


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fragmenty-crawler",
        description="A complete, polite census of Fragment (docs/crawler.md).",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="take censuses and publish them to RabbitMQ")
    when = run.add_mutually_exclusive_group(required=True)
    when.add_argument(
        "--once", action="store_true", help="one census; exit 0 only if every view was complete"
    )
    when.add_argument(
        "--every",
        type=float,
        metavar="SECONDS",
        help="a census every SECONDS, serving /healthz and /metrics",
    )
    run.add_argument(
        "--no-politeness", action="store_true", help="no rate limit (for the simulator only)"
    )
    run.add_argument(
        "--item-pages", choices=("changed", "all", "none"), help="which item pages to fetch"
    )
    run.add_argument("--item-page-cap", type=int, help="at most this many item pages per census")
    run.add_argument("--views", default="", help="e.g. number:auction,username (default: all six)")
    run.add_argument("--url", help="Fragment's base URL (default FRAGMENTY_FRAGMENT_URL)")

    parse = commands.add_parser("parse", help="parse a saved page or API answer, print JSON lines")
    parse.add_argument("file", type=Path)
    parse.add_argument(
        "--url", help="the page's URL, when the file alone does not tell (filter, item)"
    )
    parse.add_argument(
        "--ton-rate", type=Decimal, help="USD per TON for API answers (they carry none)"
    )

    probe = commands.add_parser(
        "probe",
        help="fetch one page of every view, the API and one item page per status, politely, "
        "and report any markup drift (exit 1 on a failure)",
    )
    probe.add_argument("--url", help="Fragment's base URL (default FRAGMENTY_FRAGMENT_URL)")
    probe.add_argument(
        "--rate", type=float, help="requests per second (default FRAGMENTY_CRAWL_RATE)"
    )
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if args.command == "parse":
        from fragmenty_crawler.parse_command import parse_file

        sys.exit(parse_file(args.file, args.url, args.ton_rate))

    from fragmenty_crawler.main import run_every, run_once, setup_logging
    from fragmenty_crawler.settings import CrawlerSettings

    if args.command == "probe":
        from fragmenty_crawler.probe import print_report, run_probe

        probe_overrides: dict[str, object] = {}
        if args.url:
            probe_overrides["fragment_url"] = args.url
        if args.rate is not None:
            probe_overrides["crawl_rate"] = args.rate
        probe_settings = CrawlerSettings(**probe_overrides)  # type: ignore[arg-type]
        setup_logging(probe_settings)
        probe_report = asyncio.run(run_probe(probe_settings))
        print_report(probe_report)
        sys.exit(0 if probe_report.ok else 1)

    overrides: dict[str, object] = {}
    if args.no_politeness:
        overrides["politeness"] = False
    if args.item_pages:
        overrides["item_pages"] = args.item_pages
    if args.item_page_cap is not None:
        overrides["item_page_cap"] = args.item_page_cap
    if args.url:
        overrides["fragment_url"] = args.url
    settings = CrawlerSettings(**overrides)  # type: ignore[arg-type]
    views = parse_views(args.views) if args.views else ALL_VIEWS
    setup_logging(settings)
    if args.once:
        report = asyncio.run(run_once(settings, views=views))
        sys.exit(0 if report.complete else 1)
    asyncio.run(run_every(settings, args.every, views=views))


if __name__ == "__main__":
    main()
