"""The ``/listings`` query parameters, declared once and shared by REST, CSV export and pages.

One pydantic model for all of them: pydantic-core validates the whole set in one call, which is
markedly cheaper per request than FastAPI validating a dozen separate parameters.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from fastapi import Query
from pydantic import BaseModel, Field, StringConstraints

from fragmenty_api.listing_query import DURATION_SYNTAX, Currency, ListingQuery
from fragmenty_api.snapshot import SortOrder
from fragmenty_shared.contracts import Asset, ListingStatus
from fragmenty_shared.patterns import MAX_PATTERN_LENGTH, PATTERN_SYNTAX

Tag = Annotated[str, StringConstraints(pattern=r"^[a-z0-9_-]{1,32}$")]
# A price bound as written: ASCII digits, at most 12 before the point (below 10^12 in either
# currency) and 9 after (one nanoTON). Not a Decimal: Python's Decimal also reads other scripts'
# digits ("١٢٣"), underscores ("1_000") and exponents, which the OpenAPI document cannot say.
PriceText = Annotated[str, StringConstraints(pattern=r"^[0-9]{1,12}(\.[0-9]{1,9})?$")]


class ListingFilters(BaseModel):
    asset: Asset | None = Field(default=None, description="Only numbers or only usernames.")
    status: ListingStatus | None = Field(default=None, description="auction, sale or sold.")
    q: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_PATTERN_LENGTH,
        # For the document only: the server's own refusal explains what is wrong.
        json_schema_extra={"pattern": PATTERN_SYNTAX},
        description=(
            "Numbers: digits with `*` (any run of digits) and `?` (one digit), e.g. `*7777` or "
            "`888 0???` (spaces, + and - are ignored; without `*` the whole number must "
            "match). Usernames: a case-insensitive substring."
        ),
        examples=["*7777"],
    )
    min_price: PriceText | None = Field(
        default=None, description="Lowest price, in `currency`: a plain decimal, e.g. 1200.5."
    )
    max_price: PriceText | None = Field(
        default=None, description="Highest price, in `currency`: a plain decimal, e.g. 1200.5."
    )
    currency: Currency = Field(
        default=Currency.TON, description="Currency of min_price/max_price: ton or usd."
    )
    min_memorability: float | None = Field(
        default=None, ge=0, le=1, description="Lowest memorability score (numbers)."
    )
    tags: list[Tag] | None = Field(
        default=None,
        max_length=8,
        description="Pattern tags the listing must all have, e.g. repdigit.",
    )
    ending_within: str | None = Field(
        default=None,
        max_length=32,
        json_schema_extra={"pattern": DURATION_SYNTAX},
        description="Listed, with an end less than this far away: 90m, 2h, 3d, 1w or PT2H.",
        examples=["2h"],
    )
    include_delisted: bool = Field(
        default=False, description="Also listings that left the market unsold."
    )
    min_discount_pct: float | None = Field(
        default=None,
        ge=-1000,
        le=100,
        description=(
            "Only listings priced at least this many percent under their fair value "
            "(30: 'listed 30 % under fair value'); listings without a fair value never match."
        ),
    )
    sort: SortOrder = Field(
        default=SortOrder.PRICE_ASC,
        description="Order of the results; `discount`: furthest under fair value first.",
    )


def _decimal(text: str | None) -> Decimal | None:
    return None if text is None else Decimal(text)


async def listing_query(filters: Annotated[ListingFilters, Query()]) -> ListingQuery:
    return ListingQuery.create(
        asset=filters.asset,
        status=filters.status,
        q=filters.q,
        min_price=_decimal(filters.min_price),
        max_price=_decimal(filters.max_price),
        currency=filters.currency,
        min_memorability=filters.min_memorability,
        tags=tuple(filters.tags or ()),
        ending_within=filters.ending_within,
        include_delisted=filters.include_delisted,
        min_discount_pct=filters.min_discount_pct,
        sort=filters.sort,
    )
