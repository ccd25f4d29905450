"""The estimator on small synthetic sale sets, the sales reader and the backtest."""

import math
import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from fragmenty_shared.contracts import Asset
from fragmenty_shared.valuation.backtest import backtest
from fragmenty_shared.valuation.estimator import MIN_SALES_TO_FIT, ValuationModel
from fragmenty_shared.valuation.features import longest_run
from fragmenty_shared.valuation.market import ValuedMarket
from fragmenty_shared.valuation.sales import Sale, sales_of_listing

NOW = datetime(2026, 11, 1, tzinfo=UTC)


def _number(rng: random.Random, run: int) -> str:
    """An 11-digit number whose longest run after 888 is exactly ``run`` (1..8)."""
    while True:
        digit = rng.choice("1234567")
        others = [rng.choice("0123456789") for _ in range(8 - run)]
        slug = "888" + digit * run + "".join(others)
        if longest_run(slug) == run:
            return slug


def _run_market(seed: int = 3, listings: int = 150) -> list[Sale]:
    """Sales whose price grows by 60 % per digit of run, with noise; each listing sold 1-3x."""
    rng = random.Random(seed)
    sales = []
    for _ in range(listings):
        run = rng.choice((1, 2, 3, 4, 5, 6))
        slug = _number(rng, run)
        value = 200 * math.exp(0.6 * run + rng.gauss(0, 0.2))
        for _ in range(rng.randint(1, 3)):
            at = NOW - timedelta(days=rng.uniform(1, 300))
            price = value * math.exp(rng.gauss(0, 0.15))
            sales.append(Sale(Asset.NUMBER, slug, Decimal(round(price)), at))
    return sales


def _fit(sales: list[Sale]) -> ValuationModel:
    return ValuationModel.fit(sales, now=NOW)


@pytest.fixture(scope="module")
def run_model() -> ValuationModel:
    return _fit(_run_market())


def test_estimates_rise_with_the_run_of_a_number_never_sold(run_model: ValuationModel) -> None:
    model = run_model
    rng = random.Random(99)
    values = []
    for run in (1, 3, 5, 7):
        valuation = model.estimate(Asset.NUMBER, _number(rng, run))
        assert valuation is not None
        assert valuation.low_ton < valuation.expected_ton < valuation.high_ton
        values.append(valuation.expected_ton)
    assert values == sorted(values)
    assert values[-1] > 5 * values[0]


def test_shorter_usernames_are_worth_more() -> None:
    rng = random.Random(5)
    sales = []
    for _ in range(200):
        length = rng.randint(4, 12)
        slug = "".join(rng.choice("bcdfgklmnprstvz") + rng.choice("aeiou") for _ in range(6))
        slug = slug[:length]
        price = 50_000 * math.exp(-0.5 * (length - 4) + rng.gauss(0, 0.2))
        at = NOW - timedelta(days=rng.uniform(1, 200))
        sales.append(Sale(Asset.USERNAME, slug, Decimal(round(price)), at))
    model = _fit(sales)
    short, long = (
        model.estimate(Asset.USERNAME, "zoka"),
        model.estimate(Asset.USERNAME, "zokamirateno"),
    )
    assert short is not None
    assert long is not None
    assert short.expected_ton > 3 * long.expected_ton


def test_the_band_widens_with_few_comparables() -> None:
    sales = _run_market()
    rng = random.Random(7)
    well_known = _number(rng, 4)
    for day in range(1, 9):  # sold eight times: its own sales are strong comparables
        sales.append(Sale(Asset.NUMBER, well_known, Decimal(2200), NOW - timedelta(days=day * 5)))
    model = _fit(sales)
    known = model.estimate(Asset.NUMBER, well_known)
    unknown = model.estimate(Asset.NUMBER, _number(rng, 4))  # no sale of its own
    assert known is not None
    assert unknown is not None
    assert known.high_ton / known.low_ton < unknown.high_ton / unknown.low_ton
    assert known.confidence > unknown.confidence
    # Fewer sales in the whole model: fewer neighbours to correct the prior, a wider band.
    sparse = _fit(_run_market(listings=12))
    thin = sparse.estimate(Asset.NUMBER, _number(rng, 4))
    assert thin is not None
    assert thin.high_ton / thin.low_ton > unknown.high_ton / unknown.low_ton


def test_own_sales_pull_the_estimate_and_come_first_among_comparables() -> None:
    sales = _run_market()
    rng = random.Random(11)
    lucky = _number(rng, 2)  # the prior says about 200 * e^1.2 = 660 TON
    for day in (10, 40, 70, 100):
        sales.append(Sale(Asset.NUMBER, lucky, Decimal(6000), NOW - timedelta(days=day)))
    model = _fit(sales)
    valuation = model.estimate(Asset.NUMBER, lucky)
    assert valuation is not None
    assert valuation.prior_ton < 1500 < 3000 < valuation.expected_ton < 7000
    first = valuation.comparables[0]
    assert (first.slug, first.why, first.price_ton) == (lucky, "same listing", Decimal(6000))
    assert any(c.why.startswith("similar") and c.slug != lucky for c in valuation.comparables)
    assert sum(c.weight for c in valuation.comparables) == pytest.approx(1, abs=0.01)


def test_an_absurd_sale_barely_moves_the_estimate() -> None:
    sales = _run_market()
    rng = random.Random(13)
    slug = _number(rng, 3)
    for day in (5, 25, 45):
        sales.append(Sale(Asset.NUMBER, slug, Decimal(1300), NOW - timedelta(days=day)))
    calm = _fit(sales).estimate(Asset.NUMBER, slug)
    sales.append(Sale(Asset.NUMBER, slug, Decimal(10_000_000), NOW - timedelta(days=15)))
    shaken = _fit(sales).estimate(Asset.NUMBER, slug)
    assert calm is not None
    assert shaken is not None
    assert shaken.expected_ton < calm.expected_ton * 3  # a 7,700x outlier moves it < 3x


def test_recent_sales_weigh_more_than_old_ones() -> None:
    sales = _run_market()
    rng = random.Random(17)
    slug = _number(rng, 3)
    sales.append(Sale(Asset.NUMBER, slug, Decimal(800), NOW - timedelta(days=700)))
    sales.append(Sale(Asset.NUMBER, slug, Decimal(3000), NOW - timedelta(days=2)))
    valuation = _fit(sales).estimate(Asset.NUMBER, slug)
    assert valuation is not None
    own = [c for c in valuation.comparables if c.why == "same listing"]
    assert own[0].price_ton == 3000
    assert own[0].weight > 5 * own[1].weight


def test_no_estimate_without_enough_sales_of_the_asset() -> None:
    few = _run_market(listings=3)[: MIN_SALES_TO_FIT - 1]
    model = _fit(few)
    assert not model.covers(Asset.NUMBER)
    assert model.estimate(Asset.NUMBER, "88812345678") is None
    assert model.estimate(Asset.USERNAME, "boris") is None


def test_discount_is_price_against_expected(run_model: ValuationModel) -> None:
    valuation = run_model.estimate(Asset.NUMBER, "88811112345")
    assert valuation is not None
    assert valuation.discount_pct(valuation.expected_ton) == 0
    assert valuation.discount_pct(valuation.expected_ton * Decimal("0.7")) == pytest.approx(30)
    assert valuation.discount_pct(valuation.expected_ton * 2) == pytest.approx(-100)


def test_sales_of_a_listing_skip_transfers_and_count_a_sale_once() -> None:
    sold_at = datetime(2026, 10, 1, 12, 0, 30, tzinfo=UTC)
    details = {
        "ownership_history": [
            {"price_ton": "1500", "at": "2026-10-01T12:00:00+00:00", "wallet": "UQa"},
            {"price_ton": None, "at": "2026-08-01T00:00:00+00:00", "wallet": "UQb"},
            {"price_ton": "900.5", "at": "2026-05-01T00:00:00+00:00", "wallet": "UQc"},
            {"price_ton": "oops", "at": "2026-04-01T00:00:00+00:00"},
        ]
    }
    sales = sales_of_listing(
        asset="number",
        slug="88812345678",
        status="sold",
        price_nanoton=1500 * 10**9,
        sold_at=sold_at,
        details=details,
    )
    assert [(sale.price_ton, sale.at.month) for sale in sales] == [
        (Decimal("900.5"), 5),
        (Decimal(1500), 10),
    ]
    listed = sales_of_listing(
        asset="number",
        slug="88812345678",
        status="sale",
        price_nanoton=10**12,
        sold_at=None,
        details=None,
    )
    assert listed == []


def test_backtest_beats_the_naive_baseline_where_features_matter() -> None:
    report = backtest(_run_market(listings=120))
    assert report.sales_estimated > 150
    assert report.estimator.mdape_pct < report.naive.mdape_pct
    assert report.mdape_reduction_pct > 0
    assert 50 <= report.estimator.band_share_pct <= 98
    line = report.as_json()
    assert line["bench"] == "valuation_backtest"
    assert line["sales_replayed"] == report.sales_replayed
    assert "naive" in report.as_text()


def test_backtest_scores_only_sales_since_the_given_moment() -> None:
    sales = _run_market(listings=60)
    everything = backtest(sales)
    recent = backtest(sales, since=NOW - timedelta(days=60))
    assert 0 < recent.sales_estimated < everything.sales_estimated
    assert backtest(sales, asset=Asset.USERNAME).sales_replayed == 0


def test_comparables_say_which_features_they_share(run_model: ValuationModel) -> None:
    valuation = run_model.estimate(Asset.NUMBER, "88855555123")
    assert valuation is not None
    similar = [c for c in valuation.comparables if c.why.startswith("similar")]
    assert similar
    for comparable in similar:
        assert "short" not in comparable.why  # neither is a 7-digit number
        assert comparable.why.startswith("similar: ")


def test_a_valued_market_values_the_listings_named_at_fit_and_others_on_first_use() -> None:
    sales = _run_market()
    listed = sales[0].slug
    market = ValuedMarket.fit(sales, [(Asset.NUMBER, listed), (Asset.USERNAME, "boris")])

    assert market.sales == len(sales)
    assert market.listings_valued == 2
    assert market.of(Asset.NUMBER, listed) == market.model.estimate(
        Asset.NUMBER, listed, explain=False
    )
    assert market.of(Asset.USERNAME, "boris") is None  # no username sales to value from
    unseen = _number(random.Random(5), 4)
    assert market.of(Asset.NUMBER, unseen) is not None
    assert market.listings_valued == 3  # kept until the next fit
