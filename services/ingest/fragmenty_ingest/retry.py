"""Waiting out a database outage: retry with capped exponential backoff, never give up."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from pymongo.errors import PyMongoError

logger = logging.getLogger(__name__)

T = TypeVar("T")


async def until_done(
    operation: Callable[[], Awaitable[T]],
    *,
    what: str,
    max_backoff_s: float,
    on_retry: Callable[[], None] | None = None,
) -> T:
    """Run ``operation`` until it succeeds; database errors are logged and retried.

    Messages stay unacknowledged meanwhile; if the process stops, RabbitMQ redelivers them.
    """
    backoff = 0.1
    while True:
        try:
            return await operation()
        except PyMongoError as error:
            logger.warning("%s failed, retrying in %.1f s: %s", what, backoff, error)
            if on_retry is not None:
                on_retry()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, max_backoff_s)
