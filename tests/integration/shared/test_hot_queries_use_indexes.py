"""Every hot query of the schema is served by an index on MongoDB (explain, no collection scan).

Runs where FRAGMENTY_MONGODB_URL is a real MongoDB (``make test INFRA=docker``); FerretDB 1.x
accepts indexes but never uses them (its explain says nothing useful), so there the test is
skipped: what bounds each query on FerretDB is the collection's growth class, listed with the
query in docs/storage.md.
"""

from __future__ import annotations

from typing import Any

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from fragmenty_shared.schema import ALERT_COLLECTIONS, COLLECTIONS, HOT_QUERIES, HotQuery
from fragmenty_shared.storage import ensure_indexes


def plan_stages(plan: dict[str, Any]) -> list[str]:
    """Every stage name in a winning plan, outermost first."""
    stages = [str(plan.get("stage"))]
    for key in ("inputStage", "queryPlan"):
        if isinstance(plan.get(key), dict):
            stages += plan_stages(plan[key])
    for child in plan.get("inputStages", []):
        stages += plan_stages(child)
    return stages


async def test_hot_queries_use_an_index(mongo_db: AsyncDatabase[dict[str, Any]]) -> None:
    info = await mongo_db.client.admin.command("buildInfo")
    if "ferretdbVersion" in info:
        pytest.skip("FerretDB ignores indexes; its hot collections are bounded instead")
    await ensure_indexes(mongo_db, COLLECTIONS + ALERT_COLLECTIONS)
    for query in HOT_QUERIES:
        await mongo_db[query.collection].insert_one({"_id": "placeholder"})
    for query in HOT_QUERIES:
        stages = await explained_stages(mongo_db, query)
        assert "COLLSCAN" not in stages, f"{query.who}: {stages}"


async def explained_stages(database: AsyncDatabase[dict[str, Any]], query: HotQuery) -> list[str]:
    command: dict[str, Any] = {"find": query.collection, "filter": query.filter}
    if query.sort:
        command["sort"] = dict(query.sort)
    explained = await database.command({"explain": command, "verbosity": "queryPlanner"})
    return plan_stages(explained["queryPlanner"]["winningPlan"])
