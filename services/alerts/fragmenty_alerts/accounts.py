"""Accounts and their API keys: a key is shown once, and only its SHA-256 is stored.

Keys are 256 random bits, so a plain hash is enough (there is nothing to brute-force, unlike a
password); the hash is the ``_id`` of ``alert_api_keys``, found with one key lookup.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from datetime import UTC, datetime

from fragmenty_alerts.store import AlertsStore

KEY_PREFIX = "fgy_"
CACHE_S = 30.0


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(8)}"


def new_api_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class Accounts:
    def __init__(self, store: AlertsStore) -> None:
        self._store = store
        self._cache: dict[str, tuple[float, str | None]] = {}

    async def create(
        self, name: str | None, *, telegram_chat_id: int | None = None
    ) -> tuple[str, str]:
        """A new account and its API key (returned only here)."""
        account_id, key = new_id("acc"), new_api_key()
        now = datetime.now(UTC)
        await self._store.accounts.insert_one(
            {
                "_id": account_id,
                "name": name,
                "created_at": now,
                "telegram_chat_id": telegram_chat_id,
            }
        )
        await self._store.api_keys.insert_one(
            {"_id": key_hash(key), "account_id": account_id, "created_at": now}
        )
        return account_id, key

    async def account_of(self, key: str) -> str | None:
        hashed = key_hash(key)
        cached = self._cache.get(hashed)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        document = await self._store.api_keys.find_one({"_id": hashed})
        account_id = document["account_id"] if document else None
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[hashed] = (time.monotonic() + CACHE_S, account_id)
        return account_id
