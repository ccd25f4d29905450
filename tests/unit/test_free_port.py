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
    assert all(20_000 <= port < ports._ephemeral_start() for port in drawn)


def test_a_port_someone_listens_on_is_not_handed_out(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        draws = iter([busy, busy, busy + 1 if busy < 65_535 else busy - 1])
        monkeypatch.setattr(random, "randint", lambda _low, _high: next(draws))
        monkeypatch.setattr(ports, "_handed_out", set())
        assert free_port() != busy
