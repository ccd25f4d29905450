"""Connection counts for the admission limits: per client address and in total.

One process counts exactly (:class:`LocalCounts`). Worker processes sharing one port
(``FRAGMENTY_NOTIFIER_WORKERS``) share a table in shared memory (:class:`SharedCounts`), so the
limits hold for the whole machine: the kernel spreads one client's connections over all
workers, and a per-worker count would let it open N times its limit.

The shared table has one row per worker and only that worker writes its row (no lock on the
handshake path); a check sums the column of every row. Two handshakes on two workers at the same
instant may both pass, so a limit can be exceeded by at most workers - 1. Addresses are counted in
``ADDRESS_SLOTS`` hashed slots: two addresses that share a slot (rare) share their limit. When a
worker dies, the parent clears its row (:func:`clear_row`) before it starts a new one.
"""

from __future__ import annotations

import ctypes
import zlib
from collections import Counter
from multiprocessing.sharedctypes import RawArray
from typing import Any, Protocol

ADDRESS_SLOTS = 1 << 16
ROW = 1 + ADDRESS_SLOTS  # slot 0: the worker's total; then the hashed addresses


class ConnectionCounts(Protocol):
    def total(self) -> int: ...

    def of(self, client_host: str) -> int: ...

    def opened(self, client_host: str) -> None: ...

    def closed(self, client_host: str) -> None: ...


class LocalCounts:
    """Exact counts of one process."""

    def __init__(self) -> None:
        self._per_client: Counter[str] = Counter()
        self._total = 0

    def total(self) -> int:
        return self._total

    def of(self, client_host: str) -> int:
        return self._per_client[client_host]

    def opened(self, client_host: str) -> None:
        self._total += 1
        self._per_client[client_host] += 1

    def closed(self, client_host: str) -> None:
        self._total -= 1
        self._per_client[client_host] -= 1
        if self._per_client[client_host] <= 0:
            del self._per_client[client_host]


def shared_table(workers: int) -> Any:
    """The table the parent creates and hands to every worker process (``SharedCounts``)."""
    return RawArray(ctypes.c_int32, workers * ROW)


def clear_row(table: Any, worker: int) -> None:
    """Forget what a worker that is gone had counted."""
    ctypes.memset(ctypes.addressof(table) + worker * ROW * 4, 0, ROW * 4)


def _slot(client_host: str) -> int:
    # crc32, not hash(): every worker process must put an address in the same slot.
    return 1 + zlib.crc32(client_host.encode()) % ADDRESS_SLOTS


class SharedCounts:
    """Machine-wide counts over every worker's row of the shared table."""

    def __init__(self, table: Any, workers: int, worker: int) -> None:
        self._table = table
        self._workers = workers
        self._own = worker * ROW

    def _column(self, slot: int) -> int:
        table = self._table
        return sum(table[row * ROW + slot] for row in range(self._workers))

    def total(self) -> int:
        return self._column(0)

    def of(self, client_host: str) -> int:
        return self._column(_slot(client_host))

    def opened(self, client_host: str) -> None:
        self._table[self._own] += 1
        self._table[self._own + _slot(client_host)] += 1

    def closed(self, client_host: str) -> None:
        self._table[self._own] -= 1
        self._table[self._own + _slot(client_host)] -= 1
