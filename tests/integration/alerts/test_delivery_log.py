"""The delivery log is read a page at a time: newest first, each page one query that returns
only its own entries (however long the log), a cursor that neither repeats nor skips, and
clear answers to bad parameters (real database)."""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from fragmenty_alerts import delivery_log, main
from fragmenty_alerts.delivery_log import (
    ARCHIVE_BATCH,
    OLDEST_FIRST,
    SETTLE,
    DeliveryStatus,
    archive,
    attempts_made,
    find_entry,
    key_of,
    read_page,
)
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


async def test_the_recent_log_stays_bounded_and_pages_read_on_into_the_archive(
    settings: Settings, mongo_db: AsyncDatabase[dict[str, Any]]
) -> None:
    window = 500
    entries = [entry("acc_me" if n % 2 else "acc_other", n) for n in range(2 * window + 1600)]
    assert len(entries) - window >= ARCHIVE_BATCH  # enough to archive
    store = AlertsStore(mongo_db)
    await store.ensure_indexes()
    await store.deliveries.insert_many(entries)
    # Two instances archive at once: the same blocks, each entry moved once; the 100 past the
    # last full block wait in the recent log for the next one.
    moved = await asyncio.gather(
        archive(store, window, datetime.now(UTC)), archive(store, window, datetime.now(UTC))
    )
    assert sum(moved) == len(entries) - window - 100
    assert await store.deliveries.count_documents({}) == window + 100
    assert await archive(store, window, datetime.now(UTC)) == 0  # within window + a batch
    mine = [e for e in entries if e["account_id"] == "acc_me"]

    finds = FindCounter(AlertCollections.DELIVERY_ARCHIVE)
    client = make_mongo_client(settings.mongodb_url, event_listeners=[finds])
    try:
        counted = AlertsStore(client[settings.mongodb_database])
        seen, pages = await walk(counted, "acc_me")
        assert seen == newest_first(mine)
        # Blocks, not entries: a page past the recent log reads a few of them.
        assert finds.documents <= 4 * pages
        failed, _ = await walk(counted, "acc_me", status=DeliveryStatus.FAILED)
        assert failed == newest_first([e for e in mine if e["status"] == "failed"])
    finally:
        await client.close()

    oldest = min(mine, key=lambda e: (e["finished_at"], e["_id"]))
    archived = await find_entry(store, oldest["_id"])
    assert archived is not None
    assert archived["message"] == oldest["message"]
    assert await attempts_made(store, oldest["delivery_id"]) == 1
    assert await find_entry(store, "rl_1|nothing|ch_acc_me~1") is None


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
    entries = [entry("acc_rare" if n % 40 == 0 else "acc_busy", n) for n in range(2100)]
    store = AlertsStore(mongo_db)
    await store.ensure_indexes()
    await store.deliveries.insert_many(entries)
    assert await archive(store, 100, datetime.now(UTC)) == 2000  # 40 blocks
    seen, pages = await walk(store, "acc_rare")
    assert seen == newest_first([e for e in entries if e["account_id"] == "acc_rare"])
    assert pages > 10  # 53 entries: one page unless cut short


class _ReadsTogether:
    """The recent log as read by an archiver whose read is held until the other's is done too:
    both instances' reads come before either one's inserts and deletes."""

    def __init__(self, collection: Any, reads: asyncio.Barrier) -> None:
        self._collection = collection
        self._reads = reads

    def find(self, *args: Any, **kwargs: Any) -> "_ReadsTogether":
        self._cursor = self._collection.find(*args, **kwargs)
        return self

    async def to_list(self, length: int | None) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = await self._cursor.to_list(length)
        await self._reads.wait()
        return found

    def __getattr__(self, name: str) -> Any:
        return getattr(self._collection, name)


async def test_instances_reading_the_log_moments_apart_cut_the_same_blocks(
    mongo_db: AsyncDatabase[dict[str, Any]],
) -> None:
    window = 100
    entries = [entry("acc_me" if n % 2 else "acc_other", n) for n in range(window + 1100)]
    store = AlertsStore(mongo_db)
    await store.ensure_indexes()
    await store.deliveries.insert_many(entries)
    reads = asyncio.Barrier(2)
    instances = [AlertsStore(mongo_db), AlertsStore(mongo_db)]
    for instance in instances:
        instance.deliveries = cast(Any, _ReadsTogether(instance.deliveries, reads))
    # The first sees e0..e989 settled, the second (a moment later) e0..e1009: two a millisecond.
    early, later = (entries[n]["finished_at"] + SETTLE for n in (990, 1010))
    moved = await asyncio.gather(
        archive(instances[0], window, early), archive(instances[1], window, later)
    )
    # e0..e499 by whichever inserted its block first, e500..e999 by the second: once each.
    assert sum(moved) == 1000

    blocks = await store.delivery_archive.find({}, sort=[("first", 1), ("_id", 1)]).to_list(None)
    archived = [entry_id for block in blocks for entry_id in block["ids"]]
    recent = [e["_id"] for e in await store.deliveries.find({}, sort=OLDEST_FIRST).to_list(None)]
    # The archive is the older part of the log, in blocks that do not overlap; each entry once.
    assert archived + recent == [e["_id"] for e in sorted(entries, key=key_of)]
    seen, _ = await walk(store, "acc_me")
    assert seen == newest_first([e for e in entries if e["account_id"] == "acc_me"])


async def _within(seconds: float, check: Callable[[], Awaitable[bool]], what: str) -> None:
    deadline = time.monotonic() + seconds
    while not await check():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.05)


async def test_an_instance_archives_at_start_and_after_a_failed_round_without_new_attempts(
    settings: Settings,
    mongo_db: AsyncDatabase[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A restarted instance has logged nothing yet, and a failed round moved nothing: neither
    waits for another ARCHIVE_BATCH attempts of its own."""
    monkeypatch.setattr(main, "ARCHIVE_EVERY_S", 0.2)
    window = 100
    store = AlertsStore(mongo_db)
    # Logged an hour ago: settled, and well within the retention the service prunes by.
    shift = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1) - T0
    entries = [entry("acc_me", n) for n in range(window + ARCHIVE_BATCH + 1)]
    for item in entries:
        item["at"] += shift
        item["finished_at"] += shift
    # An entry no round can archive (no finished_at) until it is gone.
    broken = entries.pop()
    del broken["finished_at"]
    await store.deliveries.insert_many([*entries, broken])

    async def archived() -> bool:  # moved, not only copied
        return await store.deliveries.count_documents({}) == window

    async def failed() -> bool:
        return any("archiving the log failed" in r.getMessage() for r in caplog.records)

    caplog.set_level(logging.WARNING, logger=main.logger.name)
    async with running_alerts(
        alerts_settings(settings, alerts_delivery_log_window=window)
    ) as alerts:
        await _within(10, failed, "the round at start tried the log")
        assert await store.delivery_archive.count_documents({}) == 0
        await store.deliveries.delete_one({"_id": broken["_id"]})
        await _within(10, archived, "a later round archived the log")
        assert alerts.service.deliveries.logged == 0
    assert await store.delivery_archive.count_documents({}) == 1
