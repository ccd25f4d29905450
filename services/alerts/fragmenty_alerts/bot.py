"""The Telegram bot (python-telegram-bot): link a chat to an account and manage rules from it.

Commands: ``/start [code]`` links the chat (to the account that made the link code with
``POST /api/v1/alerts/telegram/link``, or to a new account of the chat's own), ``/watch
<pattern or slug>``, ``/below <TON> [pattern]``, ``/ending <duration> [pattern]``, ``/rules``,
``/pause``, ``/resume``, ``/remove <id>``, ``/help``. Rules made here deliver to this chat.

The Bot API base URL is a setting, so tests run the real library against a local stand-in.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from telegram import Update
from telegram.ext import AIORateLimiter, Application, CommandHandler, ContextTypes

from fragmenty_alerts.accounts import Accounts, new_id
from fragmenty_alerts.channels import Channel, ChannelKind
from fragmenty_alerts.directory import Directory, rule_of
from fragmenty_alerts.durations import parse_duration
from fragmenty_alerts.rules import RuleSpec
from fragmenty_alerts.settings import AlertsSettings
from fragmenty_alerts.store import AlertsStore, Document
from fragmenty_shared.contracts import Asset
from fragmenty_shared.patterns import PatternError

logger = logging.getLogger(__name__)

HELP = (
    "Fragmenty alerts\n"
    "/watch <pattern or slug> - alert on changes (888*, +888 0000 1234, @boris)\n"
    "/below <TON> [pattern] - alert when a price falls to or below TON\n"
    "/ending <duration> [pattern] - auctions ending within e.g. 2h\n"
    "/rules - your rules\n/pause, /resume - stop or restart alerts to this chat\n"
    "/remove <id> - delete a rule\n/help - this text"
)


class TelegramBot:
    def __init__(
        self,
        settings: AlertsSettings,
        token: str,
        store: AlertsStore,
        directory: Directory,
        accounts: Accounts,
    ) -> None:
        self._settings = settings
        self._token = token
        self._store = store
        self._directory = directory
        self._accounts = accounts
        self.application = self._build()
        self.bot = self.application.bot
        handlers = {
            "start": self._start,
            "help": self._help,
            "watch": self._watch,
            "below": self._below,
            "ending": self._ending,
            "rules": self._rules,
            "pause": self._pause,
            "resume": self._resume,
            "remove": self._remove,
        }
        for command, handler in handlers.items():
            self.application.add_handler(CommandHandler(command, handler))

    def _build(self) -> Application[Any, Any, Any, Any, Any, Any]:
        builder = (
            Application.builder()
            .token(self._token)
            .base_url(self._settings.alerts_telegram_api_url)
            .rate_limiter(AIORateLimiter(overall_max_rate=30, overall_time_period=1, max_retries=3))
        )
        if not self._settings.alerts_telegram_polling:
            builder = builder.updater(None)
        return builder.build()

    async def run(self) -> None:
        """Serve commands until cancelled (sending works without it)."""
        await self.application.initialize()
        try:
            if self.application.updater is not None:
                await self.application.start()
                await self.application.updater.start_polling(poll_interval=0.2, timeout=5)
            await asyncio.Event().wait()
        finally:
            if self.application.updater is not None and self.application.updater.running:
                await self.application.updater.stop()
            if self.application.running:
                await self.application.stop()
            await self.application.shutdown()

    # -- helpers ----------------------------------------------------------------------------

    async def _chat_channel(self, chat_id: int) -> Channel | None:
        for channel in self._directory.channels.values():
            if channel.kind is ChannelKind.TELEGRAM and channel.chat_id == chat_id:
                return channel
        document = await self._store.channels.find_one({"kind": "telegram", "chat_id": chat_id})
        return Channel.of(document) if document else None

    async def _reply(self, update: Update, text: str) -> None:
        if update.effective_chat is not None:
            await self.bot.send_message(update.effective_chat.id, text)

    async def _linked(self, update: Update) -> Channel | None:
        chat = update.effective_chat
        channel = await self._chat_channel(chat.id) if chat else None
        if channel is None:
            await self._reply(update, "This chat is not linked yet: send /start first.")
        return channel

    async def _add_rule(self, update: Update, channel: Channel, fields: dict[str, Any]) -> None:
        try:
            spec = RuleSpec.model_validate({**fields, "channels": [channel.channel_id]})
        except ValueError as error:
            await self._reply(update, f"Cannot make that rule: {error}")
            return
        count = await self._store.rules.count_documents({"account_id": channel.account_id})
        if count >= self._settings.alerts_max_rules_per_account:
            await self._reply(
                update, f"You have {count} rules, the most allowed; /remove one first."
            )
            return
        now = datetime.now(UTC)
        document: Document = {
            "_id": new_id("rl"),
            "account_id": channel.account_id,
            "spec": spec.model_dump(mode="json"),
            "feed_token": secrets.token_urlsafe(18),
            "created_at": now,
            "updated_at": now,
        }
        try:
            rule = rule_of(document, raise_errors=True)
        except PatternError as error:
            await self._reply(update, f"Cannot read that pattern: {error}")
            return
        await self._store.rules.insert_one(document)
        if rule is not None:
            self._directory.put_rule(rule)
        await self._directory.changed()
        await self._reply(update, f"Rule {document['_id']} saved: {describe_rule(spec)}")

    # -- commands ---------------------------------------------------------------------------

    async def _start(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        chat = update.effective_chat
        if chat is None:
            return
        existing = await self._chat_channel(chat.id)
        if existing is not None:
            await self._reply(update, "This chat is already linked.\n\n" + HELP)
            return
        account_id: str | None = None
        if context.args:
            link = await self._store.meta.find_one({"_id": f"telegram-link|{context.args[0]}"})
            if link is None:
                await self._reply(update, "That link code is unknown or used; make a new one.")
                return
            account_id = link["account_id"]
            await self._store.meta.delete_one({"_id": link["_id"]})
        if account_id is None:
            account_id, _ = await self._accounts.create(
                f"telegram {chat.id}", telegram_chat_id=chat.id
            )
        document = {
            "_id": new_id("ch"),
            "account_id": account_id,
            "kind": ChannelKind.TELEGRAM.value,
            "chat_id": chat.id,
            "secrets": [],
            "enabled": True,
            "created_at": datetime.now(UTC),
        }
        await self._store.channels.insert_one(document)
        self._directory.put_channel(Channel.of(document))
        await self._directory.changed()
        await self._reply(update, "Linked: alerts for this account now reach this chat.\n\n" + HELP)

    async def _help(self, update: Update, _: ContextTypes.DEFAULT_TYPE) -> None:
        await self._reply(update, HELP)

    async def _watch(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        channel = await self._linked(update)
        if channel is None:
            return
        if not context.args:
            await self._reply(
                update, "Usage: /watch <pattern or slug>, e.g. /watch 888* or /watch @boris"
            )
            return
        await self._add_rule(update, channel, pattern_fields(" ".join(context.args)))

    async def _below(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        channel = await self._linked(update)
        if channel is None:
            return
        args = context.args or []
        try:
            price = Decimal(args[0].replace(",", ""))
        except (IndexError, InvalidOperation):
            await self._reply(update, "Usage: /below <TON> [pattern], e.g. /below 500 888*")
            return
        fields: dict[str, Any] = {"below_price_ton": str(price)}
        if len(args) > 1:
            fields.update(pattern_fields(" ".join(args[1:])))
        await self._add_rule(update, channel, fields)

    async def _ending(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        channel = await self._linked(update)
        if channel is None:
            return
        args = context.args or []
        try:
            seconds = parse_duration(args[0])
        except (IndexError, ValueError):
            await self._reply(update, "Usage: /ending <duration> [pattern], e.g. /ending 2h")
            return
        fields: dict[str, Any] = {"ending_within": seconds}
        if len(args) > 1:
            fields.update(pattern_fields(" ".join(args[1:])))
        await self._add_rule(update, channel, fields)

    async def _rules(self, update: Update, _: ContextTypes.DEFAULT_TYPE) -> None:
        channel = await self._linked(update)
        if channel is None:
            return
        documents = await self._store.rules.find({"account_id": channel.account_id}).to_list(None)
        if not documents:
            await self._reply(update, "No rules yet. Try /watch 888* or /below 500.")
            return
        lines = [
            f"{d['_id']}: {describe_rule(RuleSpec.model_validate(d['spec']))}" for d in documents
        ]
        await self._reply(update, "\n".join(lines))

    async def _set_enabled(self, update: Update, enabled: bool) -> None:
        channel = await self._linked(update)
        if channel is None:
            return
        fields = {
            "enabled": enabled,
            "disabled_reason": None if enabled else "paused from Telegram",
        }
        await self._store.channels.update_one({"_id": channel.channel_id}, {"$set": fields})
        document = await self._store.channels.find_one({"_id": channel.channel_id})
        if document is not None:
            self._directory.put_channel(Channel.of(document))
        await self._directory.changed()
        await self._reply(
            update,
            "Alerts to this chat resumed."
            if enabled
            else "Alerts to this chat paused; /resume restarts them.",
        )

    async def _pause(self, update: Update, _: ContextTypes.DEFAULT_TYPE) -> None:
        await self._set_enabled(update, False)

    async def _resume(self, update: Update, _: ContextTypes.DEFAULT_TYPE) -> None:
        await self._set_enabled(update, True)

    async def _remove(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        channel = await self._linked(update)
        if channel is None:
            return
        if not context.args:
            await self._reply(update, "Usage: /remove <rule id> (see /rules)")
            return
        rule_id = context.args[0]
        document = await self._store.rules.find_one({"_id": rule_id})
        if document is None or document["account_id"] != channel.account_id:
            await self._reply(update, f"No rule {rule_id}; /rules lists yours.")
            return
        await self._store.rules.delete_one({"_id": rule_id})
        self._directory.remove_rule(rule_id)
        await self._directory.changed()
        await self._reply(update, f"Rule {rule_id} removed.")


def pattern_fields(text: str) -> dict[str, Any]:
    """``@boris`` watches that username exactly; anything else is a listing pattern."""
    text = text.strip()
    if text.startswith("@"):
        return {"assets": [Asset.USERNAME.value], "slugs": [text[1:].lower()]}
    return {"pattern": text}


def describe_rule(spec: RuleSpec) -> str:
    parts = []
    if spec.slugs:
        parts.append("watch " + ", ".join(spec.slugs))
    if spec.pattern:
        parts.append(f"watch {spec.pattern}")
    if spec.below_price_ton is not None:
        parts.append(f"below {spec.below_price_ton} TON")
    if spec.above_price_ton is not None:
        parts.append(f"above {spec.above_price_ton} TON")
    if spec.ending_within is not None:
        parts.append(f"auctions ending within {spec.ending_within // 60} min")
    if spec.paused:
        parts.append("(paused)")
    return "; ".join(parts) or "every event"
