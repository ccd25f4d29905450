"""The api's current valuation model, refitted from the snapshot's sales off the event loop.

The sales are those of the in-memory snapshot's listings (their sold state and item page
ownership histories), so a refit costs no database read. Fitting and valuing every listing
take a second or so for a large market: both run in a worker thread, and the result is swapped
in at once. Requests never wait for a fit; before the first one they see no fair values.

Between refits a listing that appears is valued on first use (one cheap estimate), and its
valuation is kept until the next model.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Sequence

from fragmenty_api.snapshot import ListingRow, MarketSnapshot
from fragmenty_api.snapshot_store import SnapshotStore
from fragmenty_shared.contracts import Asset
from fragmenty_shared.money import from_nanoton
from fragmenty_shared.valuation.estimator import Valuation, ValuationModel
from fragmenty_shared.valuation.market import ValuedMarket
from fragmenty_shared.valuation.sales import Sale, sales_of_listing

logger = logging.getLogger(__name__)


def sales_of_rows(rows: Iterable[ListingRow]) -> list[Sale]:
    sales: list[Sale] = []
    for row in rows:
        sales.extend(
            sales_of_listing(
                asset=row.asset,
                slug=row.slug,
                status=row.status,
                price_nanoton=row.price_nanoton,
                sold_at=row.sold_at,
                details=row.details,
            )
        )
    return sales


def fit_valuations(rows: Sequence[ListingRow]) -> ValuedMarket:
    """Fit on the rows' sales and value every row. Runs in a thread."""
    return ValuedMarket.fit(sales_of_rows(rows), ((Asset(row.asset), row.slug) for row in rows))


class Valuations:
    """Holds the latest fit; :meth:`run` refits every ``refit_seconds`` (cancel to stop)."""

    def __init__(self, store: SnapshotStore, *, refit_seconds: float) -> None:
        self._store = store
        self._refit_seconds = refit_seconds
        self._fitted: ValuedMarket | None = None
        self.version = 0  # bumped by every fit, so caches of valuations can tell

    @property
    def model(self) -> ValuationModel | None:
        return None if self._fitted is None else self._fitted.model

    def of_row(self, row: ListingRow) -> Valuation | None:
        """The listing's current valuation (None before the first fit or for too few sales)."""
        fitted = self._fitted
        return None if fitted is None else fitted.of(Asset(row.asset), row.slug)

    def discount_of(self, row: ListingRow) -> float | None:
        valuation = self.of_row(row)
        return (
            None if valuation is None else valuation.discount_pct(from_nanoton(row.price_nanoton))
        )

    async def refit(self, snapshot: MarketSnapshot) -> ValuedMarket:
        rows = list(snapshot.listings.values())  # taken on the loop: the thread sees a copy
        started = time.perf_counter()
        fitted = await asyncio.to_thread(fit_valuations, rows)
        self._fitted = fitted
        self.version += 1
        logger.info(
            "valuation refitted: %d sales, %d listings valued in %.2f s",
            fitted.sales,
            fitted.listings_valued,
            time.perf_counter() - started,
        )
        return fitted

    async def run(self) -> None:
        """Fit once the first snapshot is in, then every ``refit_seconds``; cancel to stop.

        Waiting for the snapshot is a plain event wait: an unreachable database at start-up
        delays the first fit, never start-up or shutdown."""
        while True:
            snapshot = await self._store.wait_loaded()
            try:
                await self.refit(snapshot)
            except Exception:  # a failed fit keeps the previous model
                logger.exception("valuation refit failed; keeping the previous model")
            await asyncio.sleep(self._refit_seconds)
