"""The event loop the asyncio services run on: uvloop where it is installed, else asyncio's own.

uvloop (libuv) does a socket write or read in C where asyncio's selector loop runs Python for
each: the fan-out of one event to thousands of WebSocket clients, and the many small database
and broker round trips of ingest and alerts, spend much of their time there
(docs/notifier.md, docs/alerts.md). ``FRAGMENTY_EVENT_LOOP=asyncio`` picks asyncio's own loop
(to rule the loop out when something misbehaves).
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
from collections.abc import Callable, Coroutine
from typing import Any, Literal, TypeVar

logger = logging.getLogger(__name__)

Result = TypeVar("Result")
LoopChoice = Literal["uvloop", "asyncio"]


def loop_factory(choice: LoopChoice) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """How to make the loop ``choice`` names; None for asyncio's default."""
    if choice == "uvloop" and importlib.util.find_spec("uvloop") is not None:
        import uvloop

        return uvloop.new_event_loop
    return None


def run(main: Coroutine[Any, Any, Result], choice: LoopChoice) -> Result:
    """``asyncio.run(main)`` on the chosen loop."""
    with asyncio.Runner(loop_factory=loop_factory(choice)) as runner:
        return runner.run(main)
