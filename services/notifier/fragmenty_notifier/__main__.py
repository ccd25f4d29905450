"""``fragmenty-notifier`` / ``python -m fragmenty_notifier``: run the WebSocket service."""

from __future__ import annotations

import asyncio

from fragmenty_notifier.main import serve
from fragmenty_notifier.settings import NotifierSettings


def main() -> None:
    asyncio.run(serve(NotifierSettings()))


if __name__ == "__main__":
    main()
