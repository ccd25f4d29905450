"""A local stand-in of Telegram's Bot API, for running the real python-telegram-bot against.

It answers what the alerts bot calls (``getMe``, ``deleteWebhook``, ``getUpdates`` with long
polling and offsets, ``sendMessage``, ``answerCallbackQuery``, ``setMyCommands``), as Telegram
does: ``{"ok": true, "result": ...}``, or ``{"ok": false, "error_code": 429, "parameters":
{"retry_after": N}}`` when told to refuse. A test plays the user with :meth:`user_says` and reads
what the bot sent in :attr:`sent`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.support.private_servers import free_port

BOT_USER = {
    "id": 7000001,
    "is_bot": True,
    "first_name": "Fragmenty",
    "username": "fragmenty_test_bot",
    "can_join_groups": True,
    "can_read_all_group_messages": False,
    "supports_inline_queries": False,
}


@dataclass
class SentMessage:
    chat_id: int
    text: str
    at: float


@dataclass
class BotApiStandIn:
    port: int = field(default_factory=free_port)
    sent: list[SentMessage] = field(default_factory=list)
    too_many_requests: int = 0  # answer this many sendMessage calls with 429 first
    retry_after_s: int = 1
    _updates: list[dict[str, Any]] = field(default_factory=list)
    _new_update: asyncio.Event = field(default_factory=asyncio.Event)
    _message_sent: asyncio.Event = field(default_factory=asyncio.Event)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def base_url(self) -> str:
        """What FRAGMENTY_ALERTS_TELEGRAM_API_URL is set to (the token is appended)."""
        return f"http://127.0.0.1:{self.port}/bot"

    def user_says(self, chat_id: int, text: str) -> None:
        """A private message from user ``chat_id``, with its command entity as Telegram sends."""
        update: dict[str, Any] = {
            "update_id": next(self._ids),
            "message": {
                "message_id": next(self._ids),
                "date": int(time.time()),
                "chat": {"id": chat_id, "type": "private", "first_name": "Trader"},
                "from": {"id": chat_id, "is_bot": False, "first_name": "Trader"},
                "text": text,
            },
        }
        if text.startswith("/"):
            command = text.split()[0]
            update["message"]["entities"] = [
                {"type": "bot_command", "offset": 0, "length": len(command)}
            ]
        self._updates.append(update)
        self._new_update.set()

    async def wait_for_messages(
        self, count: int, chat_id: int | None = None, timeout_s: float = 15
    ) -> list[SentMessage]:
        deadline = time.monotonic() + timeout_s
        while True:
            found = [m for m in self.sent if chat_id is None or m.chat_id == chat_id]
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{count} bot messages did not arrive ({[m.text[:60] for m in found]})"
                )
            self._message_sent.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._message_sent.wait(), 0.2)

    async def _parameters(self, request: web.Request) -> dict[str, Any]:
        if request.content_type == "application/json":
            return dict(await request.json())
        form = await request.post()
        parameters: dict[str, Any] = {}
        for key, value in form.items():
            text = value if isinstance(value, str) else str(value)
            try:
                parameters[key] = json.loads(text)
            except ValueError:
                parameters[key] = text
        return parameters

    async def handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        parameters = await self._parameters(request)
        handler = getattr(self, f"_{method}", None)
        if handler is None:
            return web.json_response(
                {"ok": False, "error_code": 404, "description": "Not Found"}, status=404
            )
        response: web.Response = await handler(parameters)
        return response

    async def _getMe(self, _: dict[str, Any]) -> web.Response:
        return web.json_response({"ok": True, "result": BOT_USER})

    async def _deleteWebhook(self, _: dict[str, Any]) -> web.Response:
        return web.json_response({"ok": True, "result": True})

    async def _setMyCommands(self, _: dict[str, Any]) -> web.Response:
        return web.json_response({"ok": True, "result": True})

    async def _answerCallbackQuery(self, _: dict[str, Any]) -> web.Response:
        return web.json_response({"ok": True, "result": True})

    async def _getUpdates(self, parameters: dict[str, Any]) -> web.Response:
        offset = int(parameters.get("offset") or 0)
        timeout = min(float(parameters.get("timeout") or 0), 2.0)
        self._updates = [u for u in self._updates if u["update_id"] >= offset]
        if not self._updates and timeout > 0:
            self._new_update.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._new_update.wait(), timeout)
        return web.json_response({"ok": True, "result": list(self._updates)})

    async def _sendMessage(self, parameters: dict[str, Any]) -> web.Response:
        if self.too_many_requests > 0:
            self.too_many_requests -= 1
            return web.json_response(
                {
                    "ok": False,
                    "error_code": 429,
                    "description": f"Too Many Requests: retry after {self.retry_after_s}",
                    "parameters": {"retry_after": self.retry_after_s},
                },
                status=429,
            )
        chat_id = int(parameters["chat_id"])
        text = str(parameters["text"])
        self.sent.append(SentMessage(chat_id, text, time.time()))
        self._message_sent.set()
        result = {
            "message_id": next(self._ids),
            "date": int(time.time()),
            "chat": {"id": chat_id, "type": "private"},
            "from": BOT_USER,
            "text": text,
        }
        return web.json_response({"ok": True, "result": result})


@contextlib.asynccontextmanager
async def running_bot_api(standin: BotApiStandIn | None = None) -> AsyncIterator[BotApiStandIn]:
    standin = standin or BotApiStandIn()
    app = web.Application()
    app.router.add_route("*", "/bot{token}/{method}", standin.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", standin.port).start()
    try:
        yield standin
    finally:
        await runner.cleanup()
