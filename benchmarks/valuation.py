"""Valuation benchmark: the walk-forward backtest on the simulator's market, and estimate time.

The simulator prices every listing from a hidden value (docs/simulator.md); its sales are the
ownership histories its item pages show, which the crawler would store. The estimator learns
from those sales only (asset, slug, price, time), never from the hidden value. Prints one JSON
line (``"bench": "valuation"``):

- ``estimator`` / ``naive``: median absolute percentage error (MdAPE) and the share of sales
  inside the 80 % band, for the estimator and for the naive baseline (median of the last sales
  with the same tags), judged on the same sales;
- ``mdape_reduction_pct``: how much lower the estimator's MdAPE is (target >= 30);
- ``estimate_ms``: p50/p95 of one listing's estimate with its comparables (target p95 < 5), and
  ``naive_estimate_ms`` for the baseline's lookup in the same run; ``fit_s``: one full fit;
- ``targets_met``: every target above, and the band between 70 % and 90 %.

Options: ``--listings N`` (the simulator's default market, 3000 listings, is the full run;
``--quick`` is 600), ``--seed S``. Needs no servers.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from datetime import UTC, datetime

import numpy as np

from fragmenty_shared.valuation.backtest import NaiveBaseline, backtest
from fragmenty_shared.valuation.estimator import ValuationModel
from fragmenty_shared.valuation.sales import Sale
from fragmenty_simulator.market import Market

DEFAULT_LISTINGS = 3000  # the simulator's default market
QUICK_LISTINGS = 600
TIMED_ESTIMATES = 2000
EPOCH = datetime(2026, 11, 1, tzinfo=UTC)


def market_sales(market: Market) -> list[Sale]:
    """Every priced sale in the market's ownership histories (transfers have no price)."""
    return [
        Sale(listing.asset, listing.slug, record.price_ton, record.at)
        for listing in market.listings.values()
        for record in listing.sales
        if record.price_ton is not None
    ]


def percentiles_ms(seconds: list[float]) -> dict[str, float]:
    values = np.array(seconds) * 1000
    return {
        "p50": round(float(np.percentile(values, 50)), 3),
        "p95": round(float(np.percentile(values, 95)), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listings", type=int, default=DEFAULT_LISTINGS)
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_LISTINGS} listings")
    parser.add_argument("--seed", type=int, default=1)
    arguments = parser.parse_args()
    size = QUICK_LISTINGS if arguments.quick else arguments.listings
    market = Market.generate(size, seed=arguments.seed, epoch=EPOCH)
    sales = market_sales(market)
    print(f"valuation: {size} listings, {len(sales)} sales", file=sys.stderr)

    report = backtest(sales)
    print(report.as_text(), file=sys.stderr)

    fit_started = time.perf_counter()
    model = ValuationModel.fit(sales, now=market.now)
    fit_s = time.perf_counter() - fit_started
    naive = NaiveBaseline()
    for sale in sales:
        naive.add(sale)
    listings = list(market.listings.values())
    picked = random.Random(arguments.seed).choices(listings, k=TIMED_ESTIMATES)
    estimate_times, naive_times = [], []
    for listing in picked:
        started = time.perf_counter()
        model.estimate(listing.asset, listing.slug, explain=True)
        estimate_times.append(time.perf_counter() - started)
        probe = Sale(listing.asset, listing.slug, listing.price_ton, market.now)
        started = time.perf_counter()
        naive.estimate(probe)
        naive_times.append(time.perf_counter() - started)

    estimate_ms = percentiles_ms(estimate_times)
    band = report.estimator.band_share_pct
    result = {
        "bench": "valuation",
        "listings": size,
        "sales": len(sales),
        "sales_estimated": report.sales_estimated,
        "estimator": {
            "mdape_pct": report.estimator.mdape_pct,
            "band_share_pct": band,
        },
        "naive": {
            "mdape_pct": report.naive.mdape_pct,
            "band_share_pct": report.naive.band_share_pct,
        },
        "mdape_reduction_pct": report.mdape_reduction_pct,
        "estimate_ms": estimate_ms,
        "naive_estimate_ms": percentiles_ms(naive_times),
        "fit_s": round(fit_s, 3),
        "backtest_s": report.seconds,
        "targets_met": report.mdape_reduction_pct >= 30
        and 70 <= band <= 90
        and estimate_ms["p95"] < 5,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
