"""The shared insert that skips documents already stored (replays), on the real database."""

from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

from fragmenty_shared import storage
from fragmenty_shared.storage import duplicate_positions, insert_new, insert_returning_duplicates


async def test_stored_ids_are_skipped_and_named_across_chunks(
    mongo_db: AsyncDatabase[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(storage, "WRITE_CHUNK", 3)  # several inserts, duplicates in each
    collection = mongo_db["things"]
    await collection.insert_many([{"_id": f"id{n}", "v": "old"} for n in (1, 4, 5)])
    documents = [{"_id": f"id{n}", "v": "new"} for n in range(7)]

    assert await insert_returning_duplicates(collection, documents) == ["id1", "id4", "id5"]

    stored = {doc["_id"]: doc["v"] async for doc in collection.find({})}
    assert stored == {f"id{n}": "old" if n in (1, 4, 5) else "new" for n in range(7)}
    assert await insert_new(collection, documents) == 0
    assert await insert_new(collection, [{"_id": "id7"}]) == 1


def test_any_error_but_a_taken_key_is_not_a_duplicate() -> None:
    taken = BulkWriteError({"writeErrors": [{"index": 2, "code": 11000, "errmsg": "dup"}]})
    other = BulkWriteError(
        {"writeErrors": [{"index": 0, "code": 11000}, {"index": 1, "code": 10334}]}
    )
    assert duplicate_positions(taken) == {2}
    assert duplicate_positions(other) is None
