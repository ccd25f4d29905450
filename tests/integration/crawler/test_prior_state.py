"""'Changed since the last census' read from ingest's listings collection on the real server."""

from decimal import Decimal
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from fragmenty_crawler.prior import MongoPriorState
from fragmenty_shared.contracts import Asset, ListingStatus
from fragmenty_shared.money import to_nanoton
from fragmenty_shared.settings import Settings
from fragmenty_shared.storage import Collections, listing_id


async def test_the_listings_collection_gives_each_listings_status_and_exact_price(
    settings: Settings, mongo_db: AsyncDatabase[dict[str, Any]]
) -> None:
    await mongo_db[Collections.LISTINGS].insert_many(
        [
            {
                "_id": listing_id(Asset.NUMBER, "88800001234"),
                "asset": "number",
                "slug": "88800001234",
                "status": "auction",
                "price_nanoton": to_nanoton(Decimal("12.5")),
            },
            {
                "_id": listing_id(Asset.USERNAME, "boris"),
                "asset": "username",
                "slug": "boris",
                "status": "sold",
                "price_nanoton": to_nanoton(Decimal(5000)),
            },
            {"_id": "junk", "something": "else"},  # another shape says nothing; it is skipped
        ]
    )

    known = await MongoPriorState(settings.mongodb_url, settings.mongodb_database).load()

    assert known == {
        (Asset.NUMBER, "88800001234"): (ListingStatus.AUCTION, Decimal("12.5")),
        (Asset.USERNAME, "boris"): (ListingStatus.SOLD, Decimal(5000)),
    }


async def test_an_unreachable_database_means_nothing_is_known() -> None:
    prior = MongoPriorState("mongodb://127.0.0.1:9/", "nowhere")
    assert await prior.load() == {}
