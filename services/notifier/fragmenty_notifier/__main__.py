"""``fragmenty-notifier`` / ``python -m fragmenty_notifier``: run the WebSocket service."""

from __future__ import annotations

import asyncio

from fragmenty_notifier.main import serve
from fragmenty_notifier.settings import NotifierSettings
from fragmenty_shared.cli import parse_service_arguments


def main() -> None:
    parse_service_arguments(
        "fragmenty-notifier",
        "Relay price events to WebSocket clients on FRAGMENTY_NOTIFIER_PORT (/ws).",
    )
    asyncio.run(serve(NotifierSettings()))


if __name__ == "__main__":
    main()
