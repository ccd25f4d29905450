"""Reading the stored sales: one pass over ``listings`` (bounded by the market, not by time).

Every sale of a listing is on its document: its sold state and its item page's ownership
history. ``price_history`` and ``events`` grow with all time and are not read.
"""

from __future__ import annotations

from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from fragmenty_shared.storage import Collections
from fragmenty_shared.valuation.sales import (
    LISTING_FIELDS_FOR_SALES,
    Sale,
    sales_of_listing_documents,
)


async def read_stored_sales(database: AsyncDatabase[dict[str, Any]]) -> list[Sale]:
    cursor = database[Collections.LISTINGS].find({}, LISTING_FIELDS_FOR_SALES, batch_size=1000)
    documents = await cursor.to_list()
    return list(sales_of_listing_documents(documents))
