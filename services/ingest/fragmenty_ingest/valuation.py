"""Fair values on price events: ingest's copy of the valuation model (docs/valuation.md).

The model is refitted every ``refit_seconds`` from the stored sales (one pass over
``listings``, bounded by the market) in a worker thread, which also values every listing it
read, so annotating a batch's events is a dictionary lookup per event. A listing first seen
after the fit is valued on first use. Before the first fit, or when the database cannot be
read, events simply carry no valuation: a refit never holds up a batch, start-up or shutdown.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from fragmenty_ingest.metrics import IngestMetrics
from fragmenty_shared.contracts import Asset, EventValuation, PriceEvent
from fragmenty_shared.storage import Collections
from fragmenty_shared.valuation.estimator import Valuation
from fragmenty_shared.valuation.market import ValuedMarket
from fragmenty_shared.valuation.sales import LISTING_FIELDS_FOR_SALES, sales_of_listing_documents

logger = logging.getLogger(__name__)


def _fit(documents: Sequence[dict[str, Any]]) -> ValuedMarket:
    """Fit on the documents' sales and value every listing among them (in a worker thread)."""
    assets = {asset.value: asset for asset in Asset}
    listings = (
        (assets[str(d.get("asset"))], str(d.get("slug")))
        for d in documents
        if d.get("asset") in assets
    )
    return ValuedMarket.fit(list(sales_of_listing_documents(documents)), listings)


def event_valuation(valuation: Valuation, event: PriceEvent) -> EventValuation | None:
    if event.new is None or event.new.price_ton <= 0:
        return None  # a delisting has no price to compare
    return EventValuation(
        fair_value_ton=valuation.expected_ton,
        low_ton=valuation.low_ton,
        high_ton=valuation.high_ton,
        discount_pct=max(valuation.discount_pct(event.new.price_ton), -1_000_000),
        confidence=valuation.confidence,
    )


class EventValuer:
    def __init__(
        self,
        database: AsyncDatabase[dict[str, Any]],
        metrics: IngestMetrics,
        *,
        refit_seconds: float,
    ) -> None:
        self._database = database
        self._metrics = metrics
        self._refit_seconds = refit_seconds
        self._fitted: ValuedMarket | None = None
        self.fits = 0

    @property
    def sales_in_model(self) -> int:
        fitted = self._fitted
        if fitted is None:
            return 0
        return sum(fitted.model.sales_in_model(asset) for asset in Asset)

    def annotate(self, events: tuple[PriceEvent, ...]) -> tuple[PriceEvent, ...]:
        """The events with the listing's fair value against their new price, where known."""
        fitted = self._fitted
        if fitted is None or not events:
            return events
        annotated = []
        for event in events:
            valuation = fitted.of(event.asset, event.slug)
            found = None if valuation is None else event_valuation(valuation, event)
            annotated.append(
                event if found is None else event.model_copy(update={"valuation": found})
            )
        return tuple(annotated)

    async def refit(self) -> None:
        cursor = self._database[Collections.LISTINGS].find(
            {}, LISTING_FIELDS_FOR_SALES, batch_size=1000
        )
        documents = await cursor.to_list()
        fitted = await asyncio.to_thread(_fit, documents)
        self._fitted = fitted
        self.fits += 1
        self._metrics.valuation_sales.set(self.sales_in_model)
        self._metrics.valuation_refits.inc()
        logger.info("valuation refitted on %d sales", self.sales_in_model)

    async def run(self) -> None:
        """Refit now and every ``refit_seconds``; cancel to stop."""
        while True:
            try:
                await self.refit()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # the database may be down: keep the previous model
                logger.warning("valuation refit failed (%s); keeping the previous model", error)
            await asyncio.sleep(self._refit_seconds)
