"""The last prices a listing document keeps for the /listings sparklines."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from fragmenty_ingest.decide import decide_observation
from fragmenty_ingest.state import (
    RECENT_PRICES,
    ListingState,
    listing_document_fields,
    state_from_document,
)
from fragmenty_shared.money import to_nanoton
from tests.unit.ingest.factory import T0, observed


def after_prices(prices: list[int]) -> ListingState:
    state: ListingState | None = None
    for minute, price in enumerate(prices):
        observation = observed(price=str(price), at=T0 + timedelta(minutes=minute))
        state = decide_observation(state, observation).state
    assert state is not None
    return state


def test_each_price_change_is_kept_oldest_first_and_repeats_add_nothing() -> None:
    state = after_prices([100, 100, 120, 120, 90])
    assert state.recent_prices == tuple(to_nanoton(Decimal(p)) for p in (100, 120, 90))


def test_the_list_is_capped_at_the_newest_prices() -> None:
    prices = list(range(100, 100 + RECENT_PRICES + 5))
    state = after_prices(prices)
    assert state.recent_prices == tuple(to_nanoton(Decimal(p)) for p in prices[-RECENT_PRICES:])


def test_the_document_round_trips_and_an_old_document_starts_at_its_price() -> None:
    state = after_prices([100, 150])
    document = {"_id": state.listing_id, **listing_document_fields(state)}
    assert state_from_document(document).recent_prices == state.recent_prices
    del document["recent_prices"]  # written before the field existed
    assert state_from_document(document).recent_prices == (to_nanoton(Decimal(150)),)
