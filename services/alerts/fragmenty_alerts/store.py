"""The alerts service's collections, and the one write primitive its shared state rests on.

Shared state between instances is kept with **unique-key inserts**: whoever inserts a document
with a given ``_id`` first has claimed it, and everybody else gets a duplicate-key error. That
holds on MongoDB and on FerretDB 1.x alike (whose conditional updates are not atomic under
concurrency: two instances may both "win" a ``find_one_and_update``). Nothing here relies on a
conditional update.

Collections (``_id`` in brackets; growth class after the dash):

``alert_accounts`` [acc_...] -- bounded by accounts: created_at, name
``alert_api_keys`` [sha256 of the key, hex] -- bounded by accounts: account_id
``alert_rules`` [rl_...] -- bounded by accounts x rule limit: account_id, spec (RuleSpec JSON),
    feed_token, created_at, updated_at
``alert_channels`` [ch_...] -- bounded by accounts x channel limit: account_id, kind, url, secrets,
    chat_id, enabled, disabled_reason, disabled_at, failing_since, last_success_at
``alert_meta`` ["config"] -- one document: version (a fresh token on every rule/channel change,
    so instances know to reload)
``alert_links`` ["<rule>|<listing>|<seq>"] -- recent window (pruned after two days): one link per
    state change of a (rule, listing) chain: armed, last_fire_at, event_id, fired
``alert_heads`` ["<rule>|<listing>"] -- bounded by pairs that fired recently: the newest link
    known (a hint; the links are the truth)
``alert_slots`` ["cap|<rule>|<day>|<n>", "rate|<account>|<minute>|<n>"] -- recent window (pruned
    after two days): counted claims for daily caps and per-minute limits
``alert_outbox`` [delivery id] -- bounded by deliveries not yet done: what to send, where, and
    when to try next
``alert_deliveries`` ["<delivery id>~<attempt>"] -- recent window (retention setting): one
    document per attempt: the delivery log
``alert_digest_items`` ["<rule>|<period>|<event>"] -- bounded by open digest periods
``alert_feed`` ["<rule>|<event>"] -- bounded by rules x feed length (older entries pruned)
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pymongo import ASCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

Document = dict[str, Any]


class AlertCollections:
    ACCOUNTS = "alert_accounts"
    API_KEYS = "alert_api_keys"
    RULES = "alert_rules"
    CHANNELS = "alert_channels"
    META = "alert_meta"
    LINKS = "alert_links"
    HEADS = "alert_heads"
    SLOTS = "alert_slots"
    OUTBOX = "alert_outbox"
    DELIVERIES = "alert_deliveries"
    DIGEST_ITEMS = "alert_digest_items"
    FEED = "alert_feed"


# What MongoDB serves each hot query with (FerretDB accepts and ignores them; see docs/storage.md).
INDEXES: dict[str, list[list[tuple[str, int]]]] = {
    AlertCollections.RULES: [[("account_id", ASCENDING)]],
    AlertCollections.CHANNELS: [[("account_id", ASCENDING)]],
    AlertCollections.OUTBOX: [[("next_attempt_at", ASCENDING)]],
    AlertCollections.DELIVERIES: [
        [("account_id", ASCENDING), ("_id", ASCENDING)],
        [("at", ASCENDING)],
    ],
    AlertCollections.DIGEST_ITEMS: [[("period_end", ASCENDING)]],
    AlertCollections.FEED: [[("rule_id", ASCENDING), ("at", ASCENDING)]],
    AlertCollections.LINKS: [[("at", ASCENDING)]],
    AlertCollections.SLOTS: [[("at", ASCENDING)]],
    AlertCollections.HEADS: [[("armed", ASCENDING)]],
}


class AlertsStore:
    """Handles on the alerts collections of one database."""

    def __init__(self, database: AsyncDatabase[Document]) -> None:
        self.database = database
        names = AlertCollections
        self.accounts = database[names.ACCOUNTS]
        self.api_keys = database[names.API_KEYS]
        self.rules = database[names.RULES]
        self.channels = database[names.CHANNELS]
        self.meta = database[names.META]
        self.links = database[names.LINKS]
        self.heads = database[names.HEADS]
        self.slots = database[names.SLOTS]
        self.outbox = database[names.OUTBOX]
        self.deliveries = database[names.DELIVERIES]
        self.digest_items = database[names.DIGEST_ITEMS]
        self.feed = database[names.FEED]

    async def ensure_indexes(self) -> None:
        for name, indexes in INDEXES.items():
            for keys in indexes:
                await self.database[name].create_index(keys)

    async def ping(self) -> None:
        await self.database.command("ping")


async def claim(collection: AsyncCollection[Document], document: Document) -> bool:
    """Insert ``document``; False when its ``_id`` was already taken (someone else's claim)."""
    try:
        await collection.insert_one(document)
    except DuplicateKeyError:
        return False
    return True


async def delete_ids(collection: AsyncCollection[Document], ids: Iterable[str]) -> None:
    ids = list(ids)
    if ids:
        await collection.delete_many({"_id": {"$in": ids}})
