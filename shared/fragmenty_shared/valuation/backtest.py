"""Walk-forward backtest: estimate every sale from what was known before it.

The sales are replayed in time order. Before each sale, the estimator has been fitted on earlier
sales only (refitted as the history grows, and told about every sale since its fit, as the
running service is); its estimate is compared with the price actually paid. A naive baseline is
judged on the same sales: the median of the last sales with the same tags (its band: their
10th to 90th percentile), what a deal bot's "reference price" is.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict, deque
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import numpy as np

from fragmenty_shared.contracts import Asset
from fragmenty_shared.memorability import assess_number
from fragmenty_shared.valuation.estimator import MIN_SALES_TO_FIT, ValuationModel
from fragmenty_shared.valuation.sales import Sale

NAIVE_WINDOW = 10  # the naive baseline's "last sales with the same tags"
REFIT_GROWTH = 1.15  # refit when the history has grown by 15 % (and by REFIT_MIN_NEW sales)
REFIT_MIN_NEW = 25


@dataclass(frozen=True)
class Figures:
    mdape_pct: float  # median absolute percentage error of the expected value
    band_share_pct: float  # share of sales inside the 80 % band


@dataclass(frozen=True)
class BacktestReport:
    asset: str | None
    since: str | None
    sales_replayed: int
    sales_estimated: int
    refits: int
    estimator: Figures
    naive: Figures
    mdape_reduction_pct: float  # how much lower the estimator's MdAPE is than the naive one's
    seconds: float

    def as_json(self) -> dict[str, Any]:
        return {"bench": "valuation_backtest", **asdict(self)}

    def as_text(self) -> str:
        scope = self.asset or "all assets"
        lines = [
            f"backtest of {scope}: {self.sales_estimated} of {self.sales_replayed} sales "
            f"estimated ({self.refits} refits, {self.seconds:.1f} s)",
            f"  {'':10} {'MdAPE':>8} {'in 80% band':>12}",
            f"  {'estimator':10} {self.estimator.mdape_pct:>7.2f}% "
            f"{self.estimator.band_share_pct:>11.1f}%",
            f"  {'naive':10} {self.naive.mdape_pct:>7.2f}% {self.naive.band_share_pct:>11.1f}%",
            f"  the estimator's MdAPE is {self.mdape_reduction_pct:.1f} % lower than naive",
        ]
        return "\n".join(lines)


class NaiveBaseline:
    """Median of the last ``NAIVE_WINDOW`` sales with the same tags (same asset)."""

    def __init__(self) -> None:
        self._recent: dict[tuple[Asset, tuple[str, ...]], deque[float]] = defaultdict(
            lambda: deque(maxlen=NAIVE_WINDOW)
        )

    @staticmethod
    def _key(sale: Sale) -> tuple[Asset, tuple[str, ...]]:
        memorability = assess_number(sale.slug) if sale.asset is Asset.NUMBER else None
        return sale.asset, () if memorability is None else memorability.tags

    def estimate(self, sale: Sale) -> tuple[float, float, float] | None:
        prices = self._recent.get(self._key(sale))
        if not prices:
            return None
        values = np.array(prices, dtype=np.float64)
        low, expected, high = np.quantile(values, [0.1, 0.5, 0.9])
        return float(expected), float(low), float(high)

    def add(self, sale: Sale) -> None:
        self._recent[self._key(sale)].append(float(sale.price_ton))


def backtest(
    sales: Iterable[Sale], *, asset: Asset | None = None, since: datetime | None = None
) -> BacktestReport:
    started = time.perf_counter()
    replay = sorted(
        (sale for sale in sales if asset is None or sale.asset is asset), key=lambda s: s.at
    )
    naive = NaiveBaseline()
    model: ValuationModel | None = None
    fitted_on = 0
    refits = 0
    errors: list[tuple[float, bool, float, bool]] = []
    for index, sale in enumerate(replay):
        if index >= MIN_SALES_TO_FIT and index >= fitted_on * REFIT_GROWTH + REFIT_MIN_NEW:
            model = ValuationModel.fit(replay[:index], now=sale.at)
            fitted_on, refits = index, refits + 1
        judged = since is None or sale.at >= since
        valuation = None
        if judged and model is not None:
            valuation = model.estimate(sale.asset, sale.slug, at=sale.at, explain=False)
        baseline = naive.estimate(sale) if judged else None
        if valuation is not None and baseline is not None:
            price = float(sale.price_ton)
            expected = float(valuation.expected_ton)
            inside = float(valuation.low_ton) <= price <= float(valuation.high_ton)
            naive_expected, naive_low, naive_high = baseline
            errors.append(
                (
                    abs(expected - price) / price,
                    inside,
                    abs(naive_expected - price) / price,
                    naive_low <= price <= naive_high,
                )
            )
        if model is not None:
            model.observe(sale)
        naive.add(sale)
    estimator, baseline_figures = _figures(errors)
    reduction = (
        (1 - estimator.mdape_pct / baseline_figures.mdape_pct) * 100
        if baseline_figures.mdape_pct
        else 0.0
    )
    return BacktestReport(
        asset=None if asset is None else asset.value,
        since=None if since is None else since.isoformat(),
        sales_replayed=len(replay),
        sales_estimated=len(errors),
        refits=refits,
        estimator=estimator,
        naive=baseline_figures,
        mdape_reduction_pct=round(reduction, 2),
        seconds=round(time.perf_counter() - started, 3),
    )


def _figures(errors: list[tuple[float, bool, float, bool]]) -> tuple[Figures, Figures]:
    if not errors:
        nothing = Figures(mdape_pct=math.nan, band_share_pct=math.nan)
        return nothing, nothing
    table = np.array(errors, dtype=np.float64)

    def figures(error_column: int, inside_column: int) -> Figures:
        return Figures(
            mdape_pct=round(float(np.median(table[:, error_column])) * 100, 2),
            band_share_pct=round(float(np.mean(table[:, inside_column])) * 100, 1),
        )

    return figures(0, 1), figures(2, 3)
