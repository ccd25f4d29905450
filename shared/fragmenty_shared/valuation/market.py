"""A fitted model and the fair value of every listing it was fitted with.

What ingest (fair values on events) and the api (fair values on listings) each hold between two
refits: the fit values the whole market at once, one neighbour query per asset, so serving a
valuation is a dictionary lookup. A listing first seen after the fit is valued on first use.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from fragmenty_shared.contracts import Asset
from fragmenty_shared.valuation.estimator import Valuation, ValuationModel
from fragmenty_shared.valuation.sales import Sale

ListingKey = tuple[Asset, str]  # (asset, slug)


@dataclass
class ValuedMarket:
    model: ValuationModel
    sales: int  # how many sales the model was fitted on
    _by_listing: dict[ListingKey, Valuation | None]

    @classmethod
    def fit(cls, sales: Sequence[Sale], listings: Iterable[ListingKey]) -> ValuedMarket:
        """Fit on ``sales`` and value every listing named. CPU-bound: run it in a thread."""
        model = ValuationModel.fit(sales)
        wanted = set(listings)
        by_listing: dict[ListingKey, Valuation | None] = {}
        for asset in Asset:
            slugs = sorted(slug for of_asset, slug in wanted if of_asset is asset)
            estimates = model.estimate_many(asset, slugs)
            by_listing.update(zip(((asset, slug) for slug in slugs), estimates, strict=True))
        return cls(model, len(sales), by_listing)

    @property
    def listings_valued(self) -> int:
        return len(self._by_listing)

    def of(self, asset: Asset, slug: str) -> Valuation | None:
        """The listing's valuation (None when its asset has too few sales to value from)."""
        key = (asset, slug)
        if key not in self._by_listing:  # first seen since the fit: valued once, then kept
            self._by_listing[key] = self.model.estimate(asset, slug, explain=False)
        return self._by_listing[key]
