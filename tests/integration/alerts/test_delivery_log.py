"""The delivery log is read a page at a time: newest first, each page one query that returns
only its own entries (however long the log), a cursor that neither repeats nor skips, and
clear answers to bad parameters (real database)."""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

from fragmenty_alerts import delivery_log, main
from fragmenty_alerts.delivery_log import (
    Archiver,
    DeliveryStatus,
    attempts_made,
    find_entry,
    key_of,
    read_page,
)
from fragmenty_alerts.recent_log import SEALED, SETTLE, SLOT, log_collections, name_of, slot_of
from fragmenty_alerts.store import AlertsStore
from fragmenty_shared.schema import AlertCollections
from fragmenty_shared.settings import Settings
from fragmenty_shared.storage import make_mongo_client
from tests.support.command_counts import FindCounter

from .harness import AlertsClient, alerts_settings, running_alerts

T0 = datetime(2026, 11, 1, tzinfo=UTC)
STATUSES = [DeliveryStatus.SENT, DeliveryStatus.SENT, DeliveryStatus.FAILED]


def entry(account_id: str, number: int, attempt: int = 1) -> dict[str, Any]:
    delivery = f"rl_1|ev{number:04d}|ch_{account_id}"
    return {
        "_id": f"{delivery}~{attempt}",
        "delivery_id": delivery,
        "attempt": attempt,
        "account_id": account_id,
        "channel_id": f"ch_{account_id}",
        "channel_kind": "webhook",
        "rule_id": "rl_1",
        "event_id": f"ev{number:04d}",
        "webhook_id": f"msg_{number}",
        "message": {"webhook_id": f"msg_{number}", "text": "x" * 500},
        "at": T0 + timedelta(milliseconds=number // 2) - timedelta(seconds=number % 5),
        # Two entries share each millisecond: the id breaks the tie.
        "finished_at": T0 + timedelta(milliseconds=number // 2),
        "status": STATUSES[number % 3].value,
        "response_code": 200,
        "error": None,
    }


def newest_first(entries: list[dict[str, Any]]) -> list[str]:
    return [
        e["_id"] for e in sorted(entries, key=lambda e: (e["finished_at"], e["_id"]), reverse=True)
    ]


async def test_pages_walk_an_accounts_log_newest_first_each_reading_only_itself(
    settings: Settings, mongo_db: AsyncDatabase[dict[str, Any]]
) -> None:
    mine = [entry("acc_me", n) for n in range(230)]
    await mongo_db[AlertCollections.DELIVERIES].insert_many(
        mine + [entry("acc_other", n) for n in range(300)]
    )
    await AlertsStore(mongo_db).ensure_indexes()
    finds = FindCounter(AlertCollections.DELIVERIES)
    client = make_mongo_client(settings.mongodb_url, event_listeners=[finds])
    try:
        store = AlertsStore(client[settings.mongodb_database])
        log = store.deliveries
        seen: list[str] = []
        cursor: str | None = None
        pages = 0
        while True:
            before = finds.documents
            page = await read_page(store, "acc_me", limit=40, cursor=cursor)
            pages += 1
            assert finds.documents - before <= 41, "a page reads its own entries and one more"
            assert all("message" not in item for item in page.entries)
            seen += [item["_id"] for item in page.entries]
            cursor = page.next_cursor
            if cursor is None:
                break
        assert seen == newest_first(mine)
        assert (pages, finds.count) == (6, 6)  # 230 entries, 40 a page: one query each

        failed = [e for e in mine if e["status"] == "failed"]
        first = await read_page(store, "acc_me", limit=50, status=DeliveryStatus.FAILED)
        rest = await read_page(
            store, "acc_me", limit=50, status=DeliveryStatus.FAILED, cursor=first.next_cursor
        )
        assert [e["_id"] for e in first.entries + rest.entries] == newest_first(failed)
        assert rest.next_cursor is None

        # A retry numbers its replay after the delivery's newest attempt: one entry read.
        await log.insert_many([entry("acc_me", 7, attempt) for attempt in (2, 3)])
        before_finds, before_documents = finds.count, finds.documents
        assert await attempts_made(store, "rl_1|ev0007|ch_acc_me") == 3
        assert (finds.count - before_finds, finds.documents - before_documents) == (1, 1)
    finally:
        await client.close()


async def walk(store: AlertsStore, account_id: str, **options: Any) -> tuple[list[str], int]:
    """Every entry of the account, page after page; and how many pages."""
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        page = await read_page(store, account_id, limit=50, cursor=cursor, **options)
        pages += 1
        seen += [item["_id"] for item in page.entries]
        if (cursor := page.next_cursor) is None:
            return seen, pages


async def log_into_slots(store: AlertsStore, entries: list[dict[str, Any]]) -> None:
    """As the service logs them: each entry into the collection of its slot."""
    by_slot: dict[str, list[dict[str, Any]]] = {}
    for item in entries:
        by_slot.setdefault(name_of(slot_of(item["finished_at"])), []).append(item)
    for name, part in by_slot.items():
        await store.database[name].insert_many(part)


async def recent_ids(store: AlertsStore) -> list[str]:
    """Every entry id left in the recent log's collections."""
    found: list[str] = []
    for collection in await log_collections(store.database):
        found += [e["_id"] for e in await store.database[collection.name].find({}).to_list(None)]
    return found


async def archived_ids(store: AlertsStore) -> list[str]:
    blocks = await store.delivery_archive.find({}).to_list(None)
    return [entry_id for block in blocks for entry_id in block["ids"]]


def spread(entries: list[dict[str, Any]], every: timedelta, start: datetime) -> None:
    """Entries finished ``every`` apart from ``start`` (and tried a moment before)."""
    for number, item in enumerate(entries):
        item["finished_at"] = start + number * every
        item["at"] = item["finished_at"] - timedelta(milliseconds=300)


async def test_instances_archive_the_settled_slots_at_once_each_entry_once(
    settings: Settings, mongo_db: AsyncDatabase[dict[str, Any]]
) -> None:
    store = AlertsStore(mongo_db)
    await store.ensure_indexes()
    # 1,300 entries over 130 s: seven slots; the round runs while the last two are not settled.
    entries = [entry("acc_me" if n % 2 else "acc_other", n) for n in range(1300)]
    spread(entries, timedelta(milliseconds=100), T0)
    await log_into_slots(store, entries)
    now = T0 + timedelta(seconds=130) - SLOT - SETTLE
    settled = [e for e in entries if slot_of(e["finished_at"]) + 1 <= slot_of(now - SETTLE)]
    assert 0 < len(settled) < len(entries)

    moved = await asyncio.gather(Archiver(store).round(now), Archiver(store).round(now))
    # Whoever sealed a slot, both may have read it: every settled entry is in one block.
    assert len(settled) <= sum(moved) <= 2 * len(settled)
    assert sorted(await archived_ids(store)) == sorted(e["_id"] for e in settled)
    assert sorted(await recent_ids(store)) == sorted(e["_id"] for e in entries if e not in settled)
    # The collections left: the slots not settled yet, the next ones (ready, empty), and the
    # bare collection that declares the indexes.
    left = {c.slot for c in await log_collections(mongo_db) if c.slot}
    assert left == {slot_of(e["finished_at"]) for e in entries if e not in settled} | {
        slot_of(now),
        slot_of(now + SLOT),
    }

    finds = FindCounter(AlertCollections.DELIVERY_ARCHIVE)
    client = make_mongo_client(settings.mongodb_url, event_listeners=[finds])
    try:
        counted = AlertsStore(client[settings.mongodb_database])
        mine = [e for e in entries if e["account_id"] == "acc_me"]
        seen, pages = await walk(counted, "acc_me")
        assert seen == newest_first(mine)
        # Blocks, not entries: a page past the recent log reads a few of them.
        assert finds.documents <= 4 * pages
        failed, _ = await walk(counted, "acc_me", status=DeliveryStatus.FAILED)
        assert failed == newest_first([e for e in mine if e["status"] == "failed"])
    finally:
        await client.close()

    oldest = min(mine, key=key_of)
    archived = await find_entry(store, oldest["_id"])
    assert archived is not None
    assert archived["message"] == oldest["message"]
    assert await attempts_made(store, oldest["delivery_id"]) == 1
    assert await find_entry(store, "rl_1|nothing|ch_acc_me~1") is None


async def test_an_entry_logged_after_its_slot_was_sealed_is_archived_later(
    mongo_db: AsyncDatabase[dict[str, Any]],
) -> None:
    store = AlertsStore(mongo_db)
    entries = [entry("acc_me", n) for n in range(50)]
    spread(entries, timedelta(milliseconds=10), T0)
    await log_into_slots(store, entries[:49])
    later = T0 + timedelta(hours=1)
    assert await Archiver(store).round(later) == 49
    await log_into_slots(store, entries[49:])  # a write delayed past SETTLE
    assert await Archiver(store).round(later) == 1
    assert sorted(await archived_ids(store)) == sorted(e["_id"] for e in entries)
    seen, _ = await walk(store, "acc_me")
    assert seen == newest_first(entries)


async def test_a_round_stopped_before_the_drop_is_finished_by_the_next_one(
    mongo_db: AsyncDatabase[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    store = AlertsStore(mongo_db)
    entries = [entry("acc_me", n) for n in range(1200)]
    spread(entries, timedelta(milliseconds=1), T0)
    await log_into_slots(store, entries)

    async def stopped(*_: Any, **__: Any) -> None:
        raise RuntimeError("stopped before the drop")

    with monkeypatch.context() as patched:
        patched.setattr(AsyncCollection, "drop", stopped)
        with pytest.raises(RuntimeError):
            await Archiver(store).round(T0 + timedelta(hours=1))
    assert [c.sealed for c in await log_collections(mongo_db)] == [True]
    assert len(await archived_ids(store)) == 1200  # written; the sealed slot is still there
    # The next round makes the same blocks (refused) and drops the slot.
    assert await Archiver(store).round(T0 + timedelta(hours=1)) == 1200
    assert sorted(await archived_ids(store)) == sorted(e["_id"] for e in entries)
    assert await recent_ids(store) == []


async def test_entries_of_the_log_before_slots_are_archived_too(
    mongo_db: AsyncDatabase[dict[str, Any]],
) -> None:
    store = AlertsStore(mongo_db)
    await store.ensure_indexes()
    entries = [entry("acc_me", n) for n in range(30)]
    await store.deliveries.insert_many(entries)  # the one collection of earlier versions
    now = datetime.now(UTC)
    assert await Archiver(store).round(now) == 30
    assert sorted(await archived_ids(store)) == sorted(e["_id"] for e in entries)
    assert {c.slot for c in await log_collections(mongo_db)} == {slot_of(now), slot_of(now + SLOT)}
    seen, _ = await walk(store, "acc_me")
    assert seen == newest_first(entries)
    # Empty, the bare collection (it declares the indexes) is left alone.
    await store.ensure_indexes()
    assert await Archiver(store).round(now) == 0
    assert AlertCollections.DELIVERIES in await mongo_db.list_collection_names()


async def test_bad_parameters_are_answered_422_with_what_is_wrong(settings: Settings) -> None:
    async with running_alerts(alerts_settings(settings)) as alerts:
        client = await AlertsClient.new_account(alerts.url)
        empty = await client.http.get("/api/v1/alerts/deliveries")
        assert empty.status_code == 200
        assert empty.json() == {"items": [], "next_cursor": None}
        for params, field in (
            ({"limit": 0}, "limit"),
            ({"limit": 201}, "limit"),
            ({"status": "exploded"}, "status"),
            ({"cursor": "yesterday"}, "cursor"),
            ({"cursor": "1796346996.123456|"}, "cursor"),
        ):
            response = await client.http.get("/api/v1/alerts/deliveries", params=params)
            assert response.status_code == 422, params
            [problem] = response.json()["detail"]
            assert problem["loc"] == ["query", field]
            assert problem["msg"]
        spec = (await client.http.get("/openapi.json")).json()
        parameters = spec["paths"]["/api/v1/alerts/deliveries"]["get"]["parameters"]
        assert {p["name"] for p in parameters if p.get("description")} >= {
            "cursor",
            "limit",
            "status",
        }
        await client.close()


async def test_an_account_thin_in_many_blocks_pages_on_in_short_pages(
    mongo_db: AsyncDatabase[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A page reads at most MAX_BLOCKS_PER_PAGE blocks; what it did not reach comes next."""
    monkeypatch.setattr(delivery_log, "BLOCK_ENTRIES", 50)
    monkeypatch.setattr(delivery_log, "MAX_BLOCKS_PER_PAGE", 2)
    entries = [entry("acc_rare" if n % 40 == 0 else "acc_busy", n) for n in range(2000)]
    store = AlertsStore(mongo_db)
    await log_into_slots(store, entries)
    assert await Archiver(store).round(datetime.now(UTC)) == 2000  # 40 blocks
    seen, pages = await walk(store, "acc_rare")
    assert seen == newest_first([e for e in entries if e["account_id"] == "acc_rare"])
    assert pages > 10  # 50 entries: one page unless cut short


async def _within(seconds: float, check: Callable[[], Awaitable[bool]], what: str) -> None:
    deadline = time.monotonic() + seconds
    while not await check():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.05)


async def test_the_service_archives_settled_slots_and_tries_a_failed_round_again(
    settings: Settings,
    mongo_db: AsyncDatabase[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(main, "ARCHIVE_EVERY_S", 0.2)
    store = AlertsStore(mongo_db)
    # Logged an hour ago: settled, and well within the retention the service prunes by.
    entries = [entry("acc_me", n) for n in range(600)]
    an_hour_ago = slot_of(datetime.now(UTC) - timedelta(hours=1)) * SLOT.total_seconds()
    spread(entries, timedelta(milliseconds=1), datetime.fromtimestamp(an_hour_ago, UTC))
    # An entry no round can archive (no finished_at) until it is gone.
    broken = dict(entries[-1], _id="broken~1")
    del broken["finished_at"]
    await log_into_slots(store, entries)
    [slot] = await log_collections(mongo_db)
    await mongo_db[slot.name].insert_one(broken)

    async def archived() -> bool:  # moved, not only copied
        return len(await archived_ids(store)) == len(entries) and not await recent_ids(store)

    async def failed() -> bool:
        return any("archiving the log failed" in r.getMessage() for r in caplog.records)

    caplog.set_level(logging.WARNING, logger=main.logger.name)
    async with running_alerts(alerts_settings(settings)):
        await _within(10, failed, "the round at start tried the log")
        assert await store.delivery_archive.count_documents({}) == 0
        await mongo_db[slot.name + SEALED].delete_one({"_id": broken["_id"]})
        await _within(10, archived, "a later round archived the log")
    assert await store.delivery_archive.count_documents({}) == 2  # blocks of 500
