"""What the previous census saw, so item pages are fetched only for listings that changed.

Two sources (``FRAGMENTY_PRIOR_STATE``):

- ``mongo`` (default): ingest's ``listings`` collection, read once at the start of a census.
  Works for ``run --once`` (cron) too, and survives restarts. If the database cannot be read,
  the census goes on as if nothing was known (every listing "changed", bounded by the cap).
- ``memory``: only what this process published in its previous census (``run --every``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Protocol

from fragmenty_shared.contracts import Asset, ListingObserved, ListingStatus
from fragmenty_shared.money import from_nanoton
from fragmenty_shared.storage import Collections, make_mongo_client

logger = logging.getLogger(__name__)

ListingKey = tuple[Asset, str]
Snapshot = tuple[ListingStatus, Decimal]


class PriorState(Protocol):
    async def load(self) -> Mapping[ListingKey, Snapshot]: ...

    def remember(self, observations: Iterable[ListingObserved]) -> None: ...


class MemoryPriorState:
    """The last census this process published; empty at start."""

    def __init__(self) -> None:
        self._last: dict[ListingKey, Snapshot] = {}
        self._current: dict[ListingKey, Snapshot] = {}

    async def load(self) -> Mapping[ListingKey, Snapshot]:
        if self._current:
            self._last, self._current = self._current, {}
        return dict(self._last)

    def remember(self, observations: Iterable[ListingObserved]) -> None:
        for observation in observations:
            key = (observation.asset, observation.slug)
            self._current[key] = (observation.status, observation.price_ton)


class MongoPriorState:
    """Ingest's current ``listings`` documents (status and exact price)."""

    def __init__(self, mongodb_url: str, database: str) -> None:
        self._url = mongodb_url
        self._database = database

    async def load(self) -> Mapping[ListingKey, Snapshot]:
        client = make_mongo_client(self._url)
        known: dict[ListingKey, Snapshot] = {}
        try:
            cursor = client[self._database][Collections.LISTINGS].find(
                {}, {"asset": 1, "slug": 1, "status": 1, "price_nanoton": 1}
            )
            async for document in cursor:
                try:
                    key = (Asset(document["asset"]), str(document["slug"]))
                    known[key] = (
                        ListingStatus(document["status"]),
                        from_nanoton(int(document["price_nanoton"])),
                    )
                except (KeyError, ValueError, TypeError):
                    continue  # a document of another shape says nothing about changes
        except Exception as exc:  # any database trouble: carry on, the cap bounds the cost
            logger.warning("prior state unavailable, treating every listing as changed: %s", exc)
        finally:
            await client.close()
        return known

    def remember(self, observations: Iterable[ListingObserved]) -> None:
        """Nothing to do: ingest writes the collection this reads."""


class ItemPageSelector:
    """Decides, row by row, whether to fetch the item page (mode, prior state, cap)."""

    def __init__(self, mode: str, cap: int, prior: Mapping[ListingKey, Snapshot]) -> None:
        self._mode = mode
        self._remaining = cap
        self._prior = prior

    def known(self, asset: Asset, slug: str, status: ListingStatus, price: Decimal) -> bool:
        """Whether the last census saw this listing in this very state."""
        return self._prior.get((asset, slug)) == (status, price)

    def wants(self, asset: Asset, slug: str, status: ListingStatus, price: Decimal) -> bool:
        if self._mode == "none" or self._remaining <= 0:
            return False
        if self._mode == "changed" and self._prior.get((asset, slug)) == (status, price):
            return False
        self._remaining -= 1
        return True
