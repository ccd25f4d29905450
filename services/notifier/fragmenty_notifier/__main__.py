"""``fragmenty-notifier`` / ``python -m fragmenty_notifier``: run the WebSocket service."""

from __future__ import annotations

import sys

from fragmenty_notifier.settings import NotifierSettings
from fragmenty_notifier.workers import run
from fragmenty_shared.cli import parse_service_arguments


def main() -> None:
    parse_service_arguments(
        "fragmenty-notifier",
        "Relay price events to WebSocket clients on FRAGMENTY_NOTIFIER_PORT (/ws).",
    )
    sys.exit(run(NotifierSettings()))


if __name__ == "__main__":
    main()
