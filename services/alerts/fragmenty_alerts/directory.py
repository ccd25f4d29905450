"""Every rule and channel, in memory: matching and delivery never wait for the database.

Loaded at start, and again whenever ``alert_meta.config.version`` changes (any instance's API
writes a fresh token there after changing a rule or a channel); the instance that made the
change updates its own copy at once.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

from fragmenty_alerts.channels import Channel
from fragmenty_alerts.index import RuleIndex
from fragmenty_alerts.rules import Rule, RuleSpec
from fragmenty_alerts.store import AlertsStore, Document

logger = logging.getLogger(__name__)
CONFIG_ID = "config"


def rule_of(document: Document, *, raise_errors: bool = False) -> Rule | None:
    """The compiled rule of a stored document; None (logged) for one that no longer compiles,
    unless ``raise_errors`` (when the rule is being saved and the user should hear why)."""
    try:
        spec = RuleSpec.model_validate(document["spec"])
        return Rule.compile(
            document["_id"], document["account_id"], spec, document.get("feed_token", "")
        )
    except Exception as error:
        if raise_errors:
            raise
        logger.warning("rule %s skipped: %s", document.get("_id"), error)
        return None


class Directory:
    def __init__(self, store: AlertsStore) -> None:
        self._store = store
        self.index = RuleIndex()
        self.channels: dict[str, Channel] = {}
        # Channel ids per account, in the order of ``channels`` (a dict as an ordered set):
        # every alert looks its account's channels up.
        self._of_account: dict[str, dict[str, None]] = {}
        self._version: Any = object()
        self._local_changes = 0  # changes this instance made itself (see refresh)
        self.loaded = False

    def channels_of(self, account_id: str) -> list[Channel]:
        return [self.channels[channel_id] for channel_id in self._of_account.get(account_id, {})]

    def targets(self, rule: Rule) -> list[Channel]:
        """The enabled channels a rule delivers to."""
        wanted = rule.spec.channels
        channels = (
            [self.channels[cid] for cid in wanted if cid in self.channels]
            if wanted is not None
            else self.channels_of(rule.account_id)
        )
        return [
            channel
            for channel in channels
            if channel.enabled and channel.account_id == rule.account_id
        ]

    async def refresh(self) -> bool:
        """Reload when another instance changed something; True when it reloaded."""
        meta = await self._store.meta.find_one({"_id": CONFIG_ID})
        version = meta.get("version") if meta else None
        if self.loaded and version == self._version:
            return False
        changes_before = self._local_changes
        rules = [
            rule async for document in self._store.rules.find({}) if (rule := rule_of(document))
        ]
        channels = [Channel.of(document) async for document in self._store.channels.find({})]
        if self._local_changes != changes_before:
            # This instance changed something while the copy was read: the copy may predate
            # it. Keep what we have; the next refresh reads again (the version differs).
            return False
        self.index.replace_all(rules)
        self.channels = {channel.channel_id: channel for channel in channels}
        self._of_account = {}
        for channel in channels:
            self._of_account.setdefault(channel.account_id, {})[channel.channel_id] = None
        self._version = version
        self.loaded = True
        return True

    async def changed(self) -> None:
        """Tell every instance (this one included, at its next refresh) to reload."""
        token = secrets.token_hex(8)
        await self._store.meta.update_one(
            {"_id": CONFIG_ID}, {"$set": {"version": token}}, upsert=True
        )

    def put_rule(self, rule: Rule) -> None:
        self._local_changes += 1
        self.index.put(rule)

    def remove_rule(self, rule_id: str) -> None:
        self._local_changes += 1
        self.index.remove(rule_id)

    def put_channel(self, channel: Channel) -> None:
        """Change a channel in this copy. When the copy is changed before the database (to
        act on it at once), call :meth:`written` once the database has it too."""
        self._local_changes += 1
        self.channels[channel.channel_id] = channel
        self._of_account.setdefault(channel.account_id, {})[channel.channel_id] = None

    def written(self) -> None:
        """A change made here first has reached the database. A refresh that read the
        database while that write was in flight may hold the old document, and it must not
        replace this copy with it: counting the write's end as a change makes it read again."""
        self._local_changes += 1

    def remove_channel(self, channel_id: str) -> None:
        self._local_changes += 1
        channel = self.channels.pop(channel_id, None)
        if channel is not None:
            self._of_account.get(channel.account_id, {}).pop(channel_id, None)
