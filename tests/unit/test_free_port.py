"""free_port draws servers' ports outside the range outgoing connections take theirs from."""

from __future__ import annotations

import random
import socket

import pytest

from fragmenty_shared import ports
from fragmenty_shared.ports import free_port


def test_ports_are_below_the_ephemeral_range_and_never_handed_out_twice() -> None:
    drawn = [free_port() for _ in range(300)]
    assert len(set(drawn)) == len(drawn)
    lowest, highest = ports.draw_range()
    assert all(lowest <= port <= highest for port in drawn)
    first, last = ports._ephemeral_range()
    assert not any(first <= port <= last for port in drawn)


@pytest.mark.parametrize(
    ("ephemeral", "drawn_from"),
    [((32_768, 60_999), (20_000, 32_767)), ((1_024, 60_000), (60_001, 65_535))],
)
def test_ports_are_drawn_on_whichever_side_of_the_ephemeral_range_has_room(
    monkeypatch: pytest.MonkeyPatch, ephemeral: tuple[int, int], drawn_from: tuple[int, int]
) -> None:
    monkeypatch.setattr(ports, "_ephemeral_range", lambda: ephemeral)
    assert ports.draw_range() == drawn_from


def test_a_port_someone_listens_on_is_not_handed_out(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        draws = iter([busy, busy, busy + 1 if busy < 65_535 else busy - 1])
        monkeypatch.setattr(random, "randint", lambda _low, _high: next(draws))
        monkeypatch.setattr(ports, "_handed_out", set())
        assert free_port() != busy
