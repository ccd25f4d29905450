"""``fragmenty-simulator``: serve a simulated fragment.com on localhost."""

from __future__ import annotations

import argparse
from datetime import datetime

import uvicorn

from fragmenty_simulator.app import SimulatorConfig, create_app
from fragmenty_simulator.faults import Faults
from fragmenty_simulator.server import build_simulator


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="fragmenty-simulator",
        description="A local fragment.com over a deterministic synthetic market (docs/simulator.md).",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--listings", type=int, default=3000, help="market size (default 3000)")
    parser.add_argument("--seed", type=int, default=1, help="same seed, same market")
    parser.add_argument(
        "--epoch", type=datetime.fromisoformat, default=None,
        help="market clock start (ISO 8601 with offset); default: now",
    )  # fmt: skip
    parser.add_argument("--page-size", type=int, default=500, help="rows per page and per part")
    parser.add_argument("--history-page-size", type=int, default=5)
    parser.add_argument(
        "--evolve-every", type=float, default=0.0,
        help="seconds between market ticks (bids, sales, new listings); 0 = still",
    )  # fmt: skip
    parser.add_argument("--rate-limit", type=int, default=0, help="answer the next N requests 429")
    parser.add_argument("--retry-after", type=int, default=1, help="Retry-After of those 429s")
    parser.add_argument("--server-errors", type=int, default=0, help="answer the next N with 502")
    parser.add_argument("--truncate", type=int, default=0, help="cut the next N pages/answers")
    parser.add_argument("--markup-change", action="store_true", help="rename the price class")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    faults = Faults(
        rate_limit=args.rate_limit,
        retry_after=args.retry_after,
        server_errors=args.server_errors,
        truncate=args.truncate,
        markup_change=args.markup_change,
    )
    config = SimulatorConfig(
        page_size=args.page_size,
        history_page_size=args.history_page_size,
        evolve_every=args.evolve_every,
        seed=args.seed,
    )
    simulator = build_simulator(
        args.listings, args.seed, config=config, faults=faults, epoch=args.epoch
    )
    uvicorn.run(create_app(simulator), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
