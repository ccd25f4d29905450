"""``fragmenty-valuation backtest`` on sales stored in the real database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from fragmenty_shared.settings import Settings
from tests.integration.api.market_seed import seed_market
from tests.integration.api.test_valuation_routes import simulated_market
from tests.support.private_servers import REPO_ROOT


def backtest(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "FRAGMENTY_MONGODB_URL": settings.mongodb_url,
        "FRAGMENTY_MONGODB_DATABASE": settings.mongodb_database,
    }
    command = [sys.executable, "-m", "fragmenty_shared.valuation.cli", "backtest", *args]
    return subprocess.run(
        command, env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=False
    )


async def test_backtest_replays_the_stored_sales_and_prints_a_json_line(
    settings: Settings, mongo_db: AsyncDatabase[dict[str, Any]]
) -> None:
    market, seeds = simulated_market(100)
    await seed_market(mongo_db, seeds)
    number_sales = sum(
        1
        for listing in market.listings.values()
        for sale in listing.sales
        if sale.price_ton and listing.asset.value == "number"
    )
    result = backtest(settings, "--asset", "number")
    assert result.returncode == 0, result.stderr
    text, line = result.stdout.strip().rsplit("\n", 1)
    figures = json.loads(line)
    assert figures["bench"] == "valuation_backtest"
    assert figures["asset"] == "number"
    # Each sale once (a sold listing's state and its history's row agree), transfers left out.
    assert figures["sales_replayed"] == number_sales
    assert 0 < figures["sales_estimated"] <= figures["sales_replayed"]
    assert figures["estimator"]["mdape_pct"] < figures["naive"]["mdape_pct"]
    assert "naive" in text
    assert "MdAPE" in text

    since = (datetime.now(UTC) - timedelta(days=60)).date().isoformat()
    later = json.loads(
        backtest(settings, "--asset", "number", "--since", since).stdout.split("\n")[-2]
    )
    assert 0 < later["sales_estimated"] < figures["sales_estimated"]
    assert later["since"].startswith(since)


def test_bad_arguments_get_a_clear_error(settings: Settings) -> None:
    result = backtest(settings, "--since", "last tuesday")
    assert result.returncode == 2
    assert "not a date or time" in result.stderr
    assert backtest(settings, "--asset", "gift").returncode == 2
