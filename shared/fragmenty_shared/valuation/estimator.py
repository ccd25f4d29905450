"""Fair value with an 80 % band: a feature prior refined by comparable sales.

Per asset, on log prices (prices span six orders of magnitude; errors are relative):

1. **Prior**: a robust linear model of log price on the standardised features
   (scikit-learn's ``HuberRegressor``: outlying sales weigh linearly, not quadratically).
2. **Neighbours**: the nearest sales of *other* listings in feature space (scikit-learn's
   ``KDTree``), weighted by similarity and recency; their residuals against the prior
   correct it locally, shrunk towards zero when there are few of them.
3. **The listing's own sales**: the strongest comparables. Their residuals estimate what the
   features miss about this very listing, shrunk like a random effect (``n / (n + lambda)``,
   where lambda is the ratio of sale-to-sale noise to listing-to-listing spread, both measured
   on the sales).
4. **Band**: the predictive spread (the listing effect not yet known, the sale noise, the
   neighbours' uncertainty), scaled once per fit so that 80 % of held-out training sales fall
   inside. Few comparables leave more of the listing effect unknown: the band widens.

Fitting takes tens to hundreds of milliseconds (run it in a thread); an estimate is a dot
product and one neighbour query.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from fragmenty_shared.contracts import Asset
from fragmenty_shared.valuation.features import FEATURE_NAMES, feature_vector
from fragmenty_shared.valuation.sales import Sale

if TYPE_CHECKING:
    from sklearn.neighbors import KDTree

Array = npt.NDArray[np.float64]

BAND_SHARE = 0.8
Z_80 = 1.2815515655446004  # standard normal quantile 0.9: 80 % between -z and +z
MIN_SALES_TO_FIT = 20
NEIGHBOURS = 12
NEIGHBOUR_PSEUDO_COUNT = 4.0  # neighbours' correction is shrunk as if this many said "zero"
RECENCY_HALF_LIFE_DAYS = 180.0
OUTLIER_CLIP_SIGMAS = 2.5
CALIBRATION_SAMPLE = 1500
_SECONDS_PER_DAY = 86_400.0


@dataclass(frozen=True, slots=True)
class Comparable:
    slug: str
    price_ton: Decimal
    at: datetime
    why: str  # "same listing" or "similar: <the features it shares>"
    weight: float  # its share of the comparables' weight, 0..1


@dataclass(frozen=True, slots=True)
class Valuation:
    asset: Asset
    slug: str
    expected_ton: Decimal
    low_ton: Decimal  # 10th percentile of the next sale price
    high_ton: Decimal  # 90th percentile
    prior_ton: Decimal  # what the features alone say
    confidence: float  # 0 (the prior alone) .. 1 (comparables removed all doubt)
    comparables: tuple[Comparable, ...]
    fitted_at: datetime
    sales_in_model: int

    def discount_pct(self, price_ton: Decimal) -> float:
        """How far under the expected value ``price_ton`` is, in percent (negative: above)."""
        return round((1.0 - float(price_ton) / float(self.expected_ton)) * 100.0, 2)


def _days(moment: datetime) -> float:
    return moment.timestamp() / _SECONDS_PER_DAY


def _ton(log_price: float) -> Decimal:
    """A TON amount from a log price: whole TON from 100 up, cents below (no false precision)."""
    value = math.exp(log_price)
    return Decimal(round(value)) if value >= 100 else Decimal(str(round(value, 2)))


def _robust_variance(values: Array) -> float:
    median = float(np.median(values))
    mad = float(np.median(np.abs(values - median)))
    return (1.4826 * mad) ** 2


@dataclass
class _AssetModel:
    """One asset's fitted model and the sales it was fitted on."""

    asset: Asset
    # The fitted scaler and regression, applied with numpy: scikit-learn's own predict checks
    # its input on every call, which costs more than the arithmetic on one row.
    mean: Array
    scale: Array
    coefficients: Array
    intercept: float
    neighbours: KDTree
    points: Array  # standardised features of each fitted sale
    residuals: Array  # log price minus prior, per fitted sale
    days: Array
    sales: list[Sale]
    listing_variance: float  # tau^2: how far listings sit from the prior
    sale_variance: float  # sigma^2: how far one listing's sales scatter
    calibration: float = 1.0
    own_sales: dict[str, list[tuple[float, float, Sale]]] = field(default_factory=dict)

    @property
    def shrinkage(self) -> float:
        """lambda = sigma^2 / tau^2: own sales needed before they count as much as the prior."""
        return self.sale_variance / self.listing_variance

    def standardised(self, slugs: Sequence[str]) -> Array:
        raw = np.array([feature_vector(self.asset, slug) for slug in slugs], dtype=np.float64)
        result: Array = (raw - self.mean) / self.scale
        return result

    def priors(self, points: Array) -> Array:
        result: Array = points @ self.coefficients + self.intercept
        return result

    def observe(self, sale: Sale, residual: float | None = None) -> None:
        """Remember a sale as the listing's own comparable (no refit: the prior stays)."""
        if residual is None:
            prior = float(self.priors(self.standardised([sale.slug]))[0])
            residual = math.log(float(sale.price_ton)) - prior
        self.own_sales.setdefault(sale.slug, []).append((_days(sale.at), residual, sale))

    def estimate_points(
        self,
        slugs: Sequence[str],
        points: Array,
        at_days: Array,
        *,
        exclude: Sequence[int | None] | None = None,
        explain: bool = False,
    ) -> list[tuple[float, float, float, float, tuple[Comparable, ...]]]:
        """(log expected, predictive sd before calibration, confidence, log prior, comparables)
        per query; ``exclude`` names a fitted sale to leave out (held-out calibration)."""
        priors = self.priors(points)
        count = min(NEIGHBOURS + 8, len(self.sales))
        distances, indices = self.neighbours.query(points, k=count)
        clip = OUTLIER_CLIP_SIGMAS * math.sqrt(self.listing_variance + self.sale_variance)
        total_variance = self.listing_variance + self.sale_variance
        no_comparables_sd = math.sqrt(
            self.listing_variance + self.sale_variance + total_variance / NEIGHBOUR_PSEUDO_COUNT
        )
        results = []
        for row, slug in enumerate(slugs):
            skip = None if exclude is None else exclude[row]
            picked = [
                (int(i), float(d))
                for i, d in zip(indices[row], distances[row], strict=True)
                if self.sales[int(i)].slug != slug and int(i) != skip
            ][:NEIGHBOURS]
            now = float(at_days[row])
            neighbour_weights = np.array(
                [_recency(now - self.days[i]) / (1.0 + d) for i, d in picked], dtype=np.float64
            )
            neighbour_residuals = np.clip(
                np.array([self.residuals[i] for i, _ in picked], dtype=np.float64), -clip, clip
            )
            weight_sum = float(neighbour_weights.sum())
            bias = float(neighbour_weights @ neighbour_residuals) / (
                weight_sum + NEIGHBOUR_PSEUDO_COUNT
            )
            own = [
                entry
                for entry in self.own_sales.get(slug, ())
                if entry[0] < now and (skip is None or entry[2] is not self.sales[skip])
            ]
            own_weights = np.array([_recency(now - day) for day, _, _ in own], dtype=np.float64)
            own_residuals = self._without_outliers([residual for _, residual, _ in own])
            own_count = float(own_weights.sum())
            effect = float(own_weights @ (own_residuals - bias)) / (own_count + self.shrinkage)
            variance = (
                self.listing_variance * self.shrinkage / (own_count + self.shrinkage)
                + self.sale_variance
                + total_variance / (weight_sum + NEIGHBOUR_PSEUDO_COUNT)
            )
            prior = float(priors[row])
            sd = math.sqrt(variance)
            # 0 with no comparables at all, 1 when only the sale-to-sale noise is left.
            narrowest_sd = math.sqrt(self.sale_variance)
            confidence = (no_comparables_sd - sd) / (no_comparables_sd - narrowest_sd)
            comparables: tuple[Comparable, ...] = ()
            if explain:
                comparables = self._comparables(slug, own, own_weights, picked, neighbour_weights)
            results.append(
                (prior + bias + effect, sd, min(max(confidence, 0.0), 1.0), prior, comparables)
            )
        return results

    def _without_outliers(self, residuals: Sequence[float]) -> Array:
        """A listing's own residuals, each held within 3 sale-noise sigmas of their median: one
        absurd sale among calm ones counts as a high sale, not as a new price level."""
        values = np.array(residuals, dtype=np.float64)
        if len(values) < 3:
            return values
        reach = 3.0 * math.sqrt(self.sale_variance)
        centre = float(np.median(values))
        clipped: Array = np.clip(values, centre - reach, centre + reach)
        return clipped

    def _comparables(
        self,
        slug: str,
        own: Sequence[tuple[float, float, Sale]],
        own_weights: Array,
        picked: Sequence[tuple[int, float]],
        neighbour_weights: Array,
    ) -> tuple[Comparable, ...]:
        total = float(own_weights.sum() + neighbour_weights.sum()) or 1.0
        listed = [
            Comparable(sale.slug, sale.price_ton, sale.at, "same listing", float(w) / total)
            for (_, _, sale), w in zip(own, own_weights, strict=True)
        ]
        mine = feature_vector(self.asset, slug)
        names = FEATURE_NAMES[self.asset]
        for (index, _), weight in zip(picked, neighbour_weights, strict=True):
            sale = self.sales[index]
            theirs = feature_vector(self.asset, sale.slug)
            # What they have in common that is there at all (both 7 digits, both a palindrome).
            shared = [name for name, a, b in zip(names, mine, theirs, strict=True) if a == b and a]
            why = "similar: " + (", ".join(shared[:4]) if shared else "nearest features")
            listed.append(
                Comparable(sale.slug, sale.price_ton, sale.at, why, float(weight) / total)
            )
        listed.sort(key=lambda comparable: -comparable.weight)
        return tuple(
            Comparable(c.slug, c.price_ton, c.at, c.why, round(c.weight, 4)) for c in listed
        )


def _recency(age_days: float) -> float:
    return float(0.5 ** (max(age_days, 0.0) / RECENCY_HALF_LIFE_DAYS))


class ValuationModel:
    """Fitted on a set of sales; answers :meth:`estimate` for any slug, sold before or not."""

    def __init__(self, models: dict[Asset, _AssetModel], fitted_at: datetime) -> None:
        self._models = models
        self.fitted_at = fitted_at

    @classmethod
    def fit(cls, sales: Iterable[Sale], *, now: datetime | None = None) -> ValuationModel:
        """Fit one model per asset that has at least ``MIN_SALES_TO_FIT`` sales."""
        by_asset: dict[Asset, list[Sale]] = defaultdict(list)
        for sale in sales:
            by_asset[sale.asset].append(sale)
        models = {
            asset: _fit_asset(asset, asset_sales)
            for asset, asset_sales in by_asset.items()
            if len(asset_sales) >= MIN_SALES_TO_FIT
        }
        return cls(models, now or datetime.now(UTC))

    def sales_in_model(self, asset: Asset) -> int:
        model = self._models.get(asset)
        return 0 if model is None else len(model.sales)

    def covers(self, asset: Asset) -> bool:
        return asset in self._models

    def observe(self, sale: Sale) -> None:
        """A sale after the fit: it becomes its listing's comparable at once."""
        model = self._models.get(sale.asset)
        if model is not None:
            model.observe(sale)

    def estimate(
        self, asset: Asset, slug: str, *, at: datetime | None = None, explain: bool = True
    ) -> Valuation | None:
        """The fair value of ``slug`` as of ``at`` (default: the fit time); None when the asset
        has too few sales to value from."""
        found = self.estimate_many(asset, [slug], at=at, explain=explain)
        return found[0]

    def estimate_many(
        self,
        asset: Asset,
        slugs: Sequence[str],
        *,
        at: datetime | None = None,
        explain: bool = False,
    ) -> list[Valuation | None]:
        """Many estimates in one neighbour query (what listing pages and event batches use)."""
        model = self._models.get(asset)
        if model is None or not slugs:
            return [None] * len(slugs)
        moment = at or self.fitted_at
        points = model.standardised(slugs)
        at_days = np.full(len(slugs), _days(moment))
        raw = model.estimate_points(slugs, points, at_days, explain=explain)
        return [
            self._valuation(asset, slug, model, *result)
            for slug, result in zip(slugs, raw, strict=True)
        ]

    def _valuation(
        self,
        asset: Asset,
        slug: str,
        model: _AssetModel,
        log_expected: float,
        sd: float,
        confidence: float,
        log_prior: float,
        comparables: tuple[Comparable, ...],
    ) -> Valuation:
        half_band = Z_80 * sd * model.calibration
        return Valuation(
            asset=asset,
            slug=slug,
            expected_ton=_ton(log_expected),
            low_ton=_ton(log_expected - half_band),
            high_ton=_ton(log_expected + half_band),
            prior_ton=_ton(log_prior),
            confidence=round(confidence, 3),
            comparables=comparables,
            fitted_at=self.fitted_at,
            sales_in_model=len(model.sales),
        )


def _fit_asset(asset: Asset, sales: list[Sale]) -> _AssetModel:
    sales = sorted(sales, key=lambda sale: sale.at)
    raw = np.array([feature_vector(asset, sale.slug) for sale in sales], dtype=np.float64)
    log_prices = np.log(np.array([float(sale.price_ton) for sale in sales], dtype=np.float64))
    # Imported on first fit: scikit-learn takes seconds to load, and a service that values
    # listings must not take that long to start (or answer --help).
    from sklearn.linear_model import HuberRegressor
    from sklearn.neighbors import KDTree
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(raw)
    points: Array = scaler.transform(raw)
    prior = HuberRegressor(epsilon=1.35, alpha=1e-3, max_iter=500).fit(points, log_prices)
    residuals: Array = log_prices - prior.predict(points)
    assert scaler.mean_ is not None
    assert scaler.scale_ is not None
    listing_variance, sale_variance = _variance_split(sales, residuals)
    model = _AssetModel(
        asset=asset,
        mean=np.asarray(scaler.mean_, dtype=np.float64),
        scale=np.asarray(scaler.scale_, dtype=np.float64),
        coefficients=np.asarray(prior.coef_, dtype=np.float64),
        intercept=float(prior.intercept_),
        neighbours=KDTree(points),
        points=points,
        residuals=residuals,
        days=np.array([_days(sale.at) for sale in sales], dtype=np.float64),
        sales=sales,
        listing_variance=listing_variance,
        sale_variance=sale_variance,
    )
    for sale, residual in zip(sales, residuals, strict=True):
        model.observe(sale, float(residual))
    model.calibration = _calibrate(model, log_prices)
    return model


def _variance_split(sales: Sequence[Sale], residuals: Array) -> tuple[float, float]:
    """(tau^2, sigma^2): listing-to-listing spread around the prior and sale-to-sale noise of
    one listing, from listings sold more than once (pooled within-listing variance)."""
    total = max(_robust_variance(residuals), 1e-4)
    per_listing: dict[str, list[float]] = defaultdict(list)
    for sale, residual in zip(sales, residuals, strict=True):
        per_listing[sale.slug].append(float(residual))
    squares, degrees = 0.0, 0
    for values in per_listing.values():
        if len(values) >= 2:
            squares += float(np.sum((np.array(values) - np.mean(values)) ** 2))
            degrees += len(values) - 1
    sale_variance = squares / degrees if degrees >= 5 else total / 2
    sale_variance = min(max(sale_variance, 1e-4), total * 0.9)
    return total - sale_variance, sale_variance


def _calibrate(model: _AssetModel, log_prices: Array) -> float:
    """Scale the predictive spread so that 80 % of held-out fitted sales fall in the band.

    Each sampled sale is estimated as of its own time, from the other sales, so the spread is
    judged on sales the estimate did not see.
    """
    count = len(model.sales)
    rng = np.random.default_rng(count)
    sample = np.sort(rng.choice(count, size=min(count, CALIBRATION_SAMPLE), replace=False))
    slugs = [model.sales[int(i)].slug for i in sample]
    results = model.estimate_points(
        slugs, model.points[sample], model.days[sample] + 1e-6, exclude=[int(i) for i in sample]
    )
    z = np.array(
        [
            abs(log_prices[int(i)] - log_expected) / sd
            for i, (log_expected, sd, *_) in zip(sample, results, strict=True)
        ],
        dtype=np.float64,
    )
    return float(max(np.quantile(z, BAND_SHARE) / Z_80, 0.25))
