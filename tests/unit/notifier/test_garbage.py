"""The collector's settings: what is frozen, when frozen garbage is taken back, and the pauses."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from fragmenty_notifier.garbage import YOUNG_THRESHOLD, ConnectionFreezer, settle_collector
from fragmenty_notifier.metrics import create_metrics


class Connections:
    def __init__(self) -> None:
        self.opened_total = 0
        self.closed_total = 0
        self.open = 0

    def __len__(self) -> int:
        return self.open

    def opened(self, count: int) -> None:
        self.opened_total += count
        self.open += count

    def closed(self, count: int) -> None:
        self.closed_total += count
        self.open -= count


class Node:
    """Half of a reference cycle, as a closed connection's objects leave behind."""

    def __init__(self) -> None:
        self.other: Node | None = None


def cycle() -> Node:
    first, second = Node(), Node()
    first.other, second.other = second, first
    return first


@pytest.fixture(autouse=True)
def collector_restored() -> Iterator[None]:
    threshold, callbacks = gc.get_threshold(), list(gc.callbacks)
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)
        gc.callbacks[:] = callbacks


def test_the_collector_is_settled_and_its_pauses_are_measured() -> None:
    metrics = create_metrics()
    settle_collector(metrics.gc_pauses)
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold()[0] == YOUNG_THRESHOLD
    gc.collect()
    full = metrics.registry.get_sample_value(
        "fragmenty_notifier_gc_pause_seconds_count", {"generation": "2"}
    )
    assert full is not None
    assert full >= 1


def test_new_connections_are_frozen_and_nothing_happens_while_none_come() -> None:
    connections = Connections()
    freezer = ConnectionFreezer(connections)
    assert freezer.tick() is None
    connections.opened(10)
    held = cycle()
    garbage = weakref.ref(held)
    assert freezer.tick() == "frozen"
    assert gc.get_freeze_count() > 0
    assert freezer.tick() is None
    del held  # the connection closes after its objects were frozen
    gc.collect()
    assert garbage() is not None  # frozen: a full collection does not see it


def test_what_is_already_dead_is_collected_not_frozen() -> None:
    connections = Connections()
    freezer = ConnectionFreezer(connections)
    connections.opened(1)
    dead = weakref.ref(cycle())
    assert freezer.tick() == "frozen"
    assert dead() is None


def test_frozen_garbage_is_taken_back_once_a_quarter_of_the_connections_closed() -> None:
    connections = Connections()
    freezer = ConnectionFreezer(connections, reclaim_min_closed=10)
    connections.opened(100)
    held = cycle()
    garbage = weakref.ref(held)
    assert freezer.tick() == "frozen"
    del held

    connections.closed(24)  # under a quarter of the 76 still open is 19: 24 is over it
    assert freezer.tick() == "reclaimed"
    assert garbage() is None
    assert gc.get_freeze_count() > 0  # the survivors are frozen again
    connections.closed(5)
    assert freezer.tick() is None  # counted from the reclaim: 5 is under the minimum


def test_what_was_frozen_is_taken_back_after_a_while(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = [1000.0]
    monkeypatch.setattr("fragmenty_notifier.garbage.time.monotonic", lambda: clock[0])
    connections = Connections()
    freezer = ConnectionFreezer(connections, reclaim_after_s=600)
    connections.opened(1000)
    freezer.tick()
    connections.closed(3)
    assert freezer.tick() is None
    clock[0] += 600
    assert freezer.tick() == "reclaimed"
    clock[0] += 600
    assert freezer.tick() is None  # nothing was frozen since: nothing to take back
