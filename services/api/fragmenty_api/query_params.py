"""The ``/listings`` query parameters, declared once and shared by REST, CSV export and pages."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from fastapi import Query
from pydantic import StringConstraints

from fragmenty_api.listing_query import Currency, ListingQuery
from fragmenty_api.snapshot import SortOrder
from fragmenty_shared.contracts import MAX_PRICE_TON, Asset, ListingStatus
from fragmenty_shared.patterns import MAX_PATTERN_LENGTH

Tag = Annotated[str, StringConstraints(pattern=r"^[a-z0-9_-]{1,32}$")]
MAX_PRICE_ANY_CURRENCY = MAX_PRICE_TON * 1000


def listing_query(
    asset: Annotated[Asset | None, Query(description="Only numbers or only usernames.")] = None,
    status: Annotated[ListingStatus | None, Query(description="auction, sale or sold.")] = None,
    q: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=MAX_PATTERN_LENGTH,
            description=(
                "Numbers: digits with `*` (any run of digits) and `?` (one digit), e.g. `*7777` or "
                "`888 0???` (spaces, + and - are ignored; without `*` the whole number must "
                "match). Usernames: a case-insensitive substring."
            ),
            examples=["*7777"],
        ),
    ] = None,
    min_price: Annotated[
        Decimal | None,
        Query(ge=0, le=MAX_PRICE_ANY_CURRENCY, description="Lowest price, in `currency`."),
    ] = None,
    max_price: Annotated[
        Decimal | None,
        Query(ge=0, le=MAX_PRICE_ANY_CURRENCY, description="Highest price, in `currency`."),
    ] = None,
    currency: Annotated[
        Currency, Query(description="Currency of min_price/max_price: ton or usd.")
    ] = Currency.TON,
    min_memorability: Annotated[
        float | None, Query(ge=0, le=1, description="Lowest memorability score (numbers).")
    ] = None,
    tags: Annotated[
        list[Tag] | None,
        Query(max_length=8, description="Pattern tags the listing must all have, e.g. repdigit."),
    ] = None,
    ending_within: Annotated[
        str | None,
        Query(
            max_length=32,
            description="Listed, with an end less than this far away: 90m, 2h, 3d, 1w or PT2H.",
            examples=["2h"],
        ),
    ] = None,
    include_delisted: Annotated[
        bool, Query(description="Also listings that left the market unsold.")
    ] = False,
    sort: Annotated[SortOrder, Query(description="Order of the results.")] = SortOrder.PRICE_ASC,
) -> ListingQuery:
    return ListingQuery.create(
        asset=asset,
        status=status,
        q=q,
        min_price=min_price,
        max_price=max_price,
        currency=currency,
        min_memorability=min_memorability,
        tags=tuple(tags or ()),
        ending_within=ending_within,
        include_delisted=include_delisted,
        sort=sort,
    )
