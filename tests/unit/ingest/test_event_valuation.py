"""Ingest's fair values on events: annotated against the event's new price, or left alone."""

import math
import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from fragmenty_ingest.metrics import IngestMetrics
from fragmenty_ingest.valuation import EventValuer, _fit
from fragmenty_shared.contracts import (
    Asset,
    EventType,
    ListingSnapshot,
    ListingStatus,
    PriceEvent,
    make_event_id,
)
from fragmenty_shared.money import to_nanoton

NOW = datetime(2026, 11, 1, tzinfo=UTC)


def _sold_documents(count: int = 60) -> list[dict[str, Any]]:
    """Stored listings as ingest writes them, each with a sale of its own."""
    rng = random.Random(2)
    documents = []
    for index in range(count):
        slug = f"888{index:08d}"
        price = Decimal(round(300 * math.exp(rng.gauss(0, 0.2))))
        documents.append(
            {
                "asset": "number",
                "slug": slug,
                "status": "sold",
                "price_nanoton": to_nanoton(price),
                "sold_at": NOW - timedelta(days=index + 1),
                "details": None,
            }
        )
    return documents


def _event(slug: str, event_type: EventType, price: str | None) -> PriceEvent:
    state = ListingSnapshot(status=ListingStatus.SALE, price_ton=Decimal(price)) if price else None
    return PriceEvent(
        event_id=make_event_id(Asset.NUMBER, slug, event_type, NOW),
        type=event_type,
        asset=Asset.NUMBER,
        slug=slug,
        title=slug,
        occurred_at=NOW,
        old=state if event_type is EventType.DELISTED else None,
        new=None if event_type is EventType.DELISTED else state,
    )


def test_events_carry_the_fair_value_against_their_new_price() -> None:
    valuer = EventValuer(database=None, metrics=IngestMetrics(), refit_seconds=60)  # type: ignore[arg-type]
    cheap = _event("88800000003", EventType.LISTED, "30")
    unknown_slug = _event("88899999999", EventType.PRICE_CHANGED, "3000")
    gone = _event("88800000004", EventType.DELISTED, "300")
    assert valuer.annotate((cheap,)) == (cheap,)  # no fit yet: events go out as they are

    valuer._fitted = _fit(_sold_documents())
    annotated_cheap, annotated_unknown, annotated_gone = valuer.annotate(
        (cheap, unknown_slug, gone)
    )
    assert annotated_cheap.valuation is not None
    fair = annotated_cheap.valuation.fair_value_ton
    assert 150 < fair < 600
    assert annotated_cheap.valuation.discount_pct == round((1 - 30 / float(fair)) * 100, 2)
    assert annotated_cheap.valuation.low_ton < fair < annotated_cheap.valuation.high_ton
    assert annotated_unknown.valuation is not None  # valued on first use
    assert annotated_unknown.valuation.discount_pct < 0  # 3000 is far above
    assert annotated_gone.valuation is None  # a delisting has no price to compare
    # Everything else about the event is unchanged.
    assert annotated_cheap.model_dump(exclude={"valuation"}) == cheap.model_dump(
        exclude={"valuation"}
    )
