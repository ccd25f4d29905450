"""Writes of many concurrent callers, sent to the database together.

A caller awaits its own write; meanwhile every write queued by others joins the same round
trip. The first write goes out at once (or, for writes nothing waits for, after a short linger),
and so do the next while fewer than ``rounds_in_flight`` are at the database; whatever arrives
beyond that goes in the next batch, so batches grow when the database is the bottleneck. Writes
in flight together are not ordered: a caller that needs one write after another awaits the
first.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from pymongo import DeleteOne, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import BulkWriteError

from fragmenty_alerts.store import Document
from fragmenty_shared.storage import duplicate_positions

MAX_BATCH = 1000
# Rounds in flight for the writes an alert waits for before it is sent (claims of chain
# links, slots, attempts).
ROUNDS_ON_THE_WAY_OUT = 3
# Linger of the writes beside or after sending (outbox, log, feed, heads): at most 20 rounds a
# second each, so that they take less of the database's time from the writes above.
LINGER_BESIDE_S = 0.05
Operation = UpdateOne | DeleteOne
Route = Callable[[Document], AsyncCollection[Document]]


class WriteBatcher:
    """Inserts (each told whether it claimed its ``_id``) and updates/deletes of one collection
    (or inserts into a family of collections, each document's chosen by ``route``)."""

    def __init__(
        self,
        collection: AsyncCollection[Document],
        *,
        rounds_in_flight: int = 1,
        linger_s: float = 0.0,
        route: Route | None = None,
    ) -> None:
        """``rounds_in_flight`` > 1 for writes on an alert's way out (they need not wait for
        the round before them); ``linger_s`` > 0 for writes off it (waiting a little makes
        fewer, larger round trips: less work for the database per write)."""
        self._collection = collection
        self._route = route
        self._linger_s = linger_s
        self._inserts: list[tuple[Document, asyncio.Future[bool]]] = []
        self._operations: list[tuple[Operation, asyncio.Future[None]]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._rounds = asyncio.Semaphore(rounds_in_flight)
        self._in_flight: set[asyncio.Task[None]] = set()

    async def insert(self, document: Document) -> bool:
        """Insert ``document``; False when its ``_id`` was taken (the claim went to someone else)."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._inserts.append((document, future))
        self._kick()
        return await future

    async def apply(self, operation: Operation) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._operations.append((operation, future))
        self._kick()
        await future

    def _kick(self) -> None:
        self._wake.set()
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name=f"batcher {self._collection.name}")

    async def close(self) -> None:
        for task in [self._task, *self._in_flight]:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._inserts or self._operations:
                await self._rounds.acquire()
                if self._linger_s:
                    await asyncio.sleep(self._linger_s)
                inserts, self._inserts = self._inserts[:MAX_BATCH], self._inserts[MAX_BATCH:]
                operations, self._operations = (
                    self._operations[:MAX_BATCH],
                    self._operations[MAX_BATCH:],
                )
                round_trip = asyncio.create_task(self._flush(inserts, operations))
                self._in_flight.add(round_trip)
                round_trip.add_done_callback(self._round_done)

    def _round_done(self, round_trip: asyncio.Task[None]) -> None:
        self._in_flight.discard(round_trip)
        self._rounds.release()

    async def _flush(
        self,
        inserts: list[tuple[Document, asyncio.Future[bool]]],
        operations: list[tuple[Operation, asyncio.Future[None]]],
    ) -> None:
        await asyncio.gather(self._flush_inserts(inserts), self._flush_operations(operations))

    async def _flush_inserts(self, batch: list[tuple[Document, asyncio.Future[bool]]]) -> None:
        if self._route is None:
            await self._insert_into(self._collection, batch)
            return
        routed: dict[str, list[tuple[Document, asyncio.Future[bool]]]] = {}
        targets: dict[str, AsyncCollection[Document]] = {}
        for document, future in batch:
            target = self._route(document)
            targets[target.name] = target
            routed.setdefault(target.name, []).append((document, future))
        await asyncio.gather(
            *(self._insert_into(targets[name], part) for name, part in routed.items())
        )

    async def _insert_into(
        self,
        collection: AsyncCollection[Document],
        batch: list[tuple[Document, asyncio.Future[bool]]],
    ) -> None:
        if not batch:
            return
        taken: set[int] = set()
        try:
            await collection.insert_many([document for document, _ in batch], ordered=False)
        except BulkWriteError as error:
            duplicates = duplicate_positions(error)
            if duplicates is None:
                _fail(batch, error)
                return
            taken = duplicates
        except Exception as error:
            _fail(batch, error)
            return
        for position, (_, future) in enumerate(batch):
            if not future.done():
                future.set_result(position not in taken)

    async def _flush_operations(self, batch: list[tuple[Operation, asyncio.Future[None]]]) -> None:
        if not batch:
            return
        try:
            await self._collection.bulk_write([operation for operation, _ in batch], ordered=False)
        except Exception as error:
            _fail(batch, error)
            return
        for _, future in batch:
            if not future.done():
                future.set_result(None)


class BatchedDeletes:
    """Deletes by ``_id`` of many callers: one ``delete_many`` per round, at most one round per
    ``every_s``.

    On FerretDB 1.x a delete scans the whole collection however few ids it names (a delete
    command of N ``_id`` statements scans it N times), so a collection that loses many documents
    a second (the outbox: every delivered alert) is cleaned in rounds: the scans are per round,
    not per document. Each caller still waits until its document is gone.
    """

    def __init__(self, collection: AsyncCollection[Document], every_s: float) -> None:
        self._collection = collection
        self._every_s = every_s
        self._pending: list[tuple[Any, asyncio.Future[None]]] = []
        self._task: asyncio.Task[None] | None = None

    async def delete(self, document_id: Any) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((document_id, future))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name=f"deletes {self._collection.name}")
        await future

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
            try:
                await self._collection.delete_many({"_id": {"$in": [key for key, _ in batch]}})
            except Exception as error:
                _fail(batch, error)
            else:
                for _, future in batch:
                    if not future.done():
                        future.set_result(None)
            # Whatever arrives meanwhile goes in the next round.
            await asyncio.sleep(self._every_s)


def _fail(batch: list[tuple[Any, asyncio.Future[Any]]], error: Exception) -> None:
    for _, future in batch:
        if not future.done():
            future.set_exception(error)
