"""Alerts to a Telegram chat through the bot (python-telegram-bot).

Telegram allows about 30 messages a second overall (the bot's ``AIORateLimiter`` keeps to it)
and one a second per chat (kept here: messages to one chat are spaced). A 429 carries
``retry_after``, which becomes the delivery's next attempt; a chat that blocked the bot or no
longer exists is gone for good.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict

from telegram import Bot, LinkPreviewOptions
from telegram.error import BadRequest, Forbidden, RetryAfter, TelegramError

from fragmenty_alerts.channels import Channel, Outgoing, SendResult

PER_CHAT_INTERVAL_S = 1.0
MAX_MESSAGE_CHARS = 4096
_REMEMBERED_CHATS = 10_000


class TelegramSender:
    def __init__(self, bot: Bot | None) -> None:
        self._bot = bot
        self._chat_locks: OrderedDict[int, tuple[asyncio.Lock, list[float]]] = OrderedDict()

    def _chat(self, chat_id: int) -> tuple[asyncio.Lock, list[float]]:
        entry = self._chat_locks.get(chat_id)
        if entry is None:
            entry = self._chat_locks[chat_id] = (asyncio.Lock(), [0.0])
            while len(self._chat_locks) > _REMEMBERED_CHATS:
                self._chat_locks.popitem(last=False)
        return entry

    async def send(self, channel: Channel, message: Outgoing) -> SendResult:
        if self._bot is None:
            return SendResult(
                False, error="the Telegram bot is off (no FRAGMENTY_ALERTS_TELEGRAM_TOKEN)"
            )
        if channel.chat_id is None:
            return SendResult(False, error="no chat linked", gone=True)
        lock, last_sent = self._chat(channel.chat_id)
        async with lock:
            wait = last_sent[0] + PER_CHAT_INTERVAL_S - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            try:
                await self._bot.send_message(
                    chat_id=channel.chat_id,
                    text=message.text[:MAX_MESSAGE_CHARS],
                    link_preview_options=LinkPreviewOptions(is_disabled=True),
                )
            except RetryAfter as error:
                retry = error.retry_after
                seconds = retry if isinstance(retry, int | float) else retry.total_seconds()
                return SendResult(False, 429, error=str(error), retry_after_s=float(seconds))
            except Forbidden as error:
                return SendResult(False, 403, error=str(error), gone=True)
            except BadRequest as error:
                gone = "chat not found" in str(error).lower()
                return SendResult(False, 400, error=str(error), gone=gone)
            except TelegramError as error:
                return SendResult(False, error=f"{type(error).__name__}: {error}"[:300])
            finally:
                last_sent[0] = time.monotonic()
        return SendResult(True, 200)
