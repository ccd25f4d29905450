"""A free TCP port for a server that will bind it a moment later.

Binding port 0 hands out a port from the kernel's ephemeral range, the range outgoing connections
take their source ports from. Between the probe and the server's own bind, a connection to the
broker or the database can take that port, and the server then fails to start (CI saw the
crawler's ops server exit this way in `make demo`). So ports are drawn outside the ephemeral range,
at random so that processes drawing at the same time rarely meet, never twice in one process, and
each is checked free by binding it.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

_LOWEST = 20_000
_ROOM = 1_000  # fewer free ports than this outside the ephemeral range: use the other side
_EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_handed_out: set[int] = set()


def _ephemeral_range() -> tuple[int, int]:
    """The ports the kernel hands to outgoing connections (Linux's default where unknown)."""
    try:
        first, last = (int(bound) for bound in _EPHEMERAL_RANGE.read_text().split()[:2])
    except (OSError, ValueError):
        return 32_768, 60_999
    return first, last


def draw_range() -> tuple[int, int]:
    """Where ports are drawn: below the ephemeral range, or above it where it starts low (some
    containers use 1024-65000); with no room on either side, anywhere (no guarantee then)."""
    first, last = _ephemeral_range()
    if first - _LOWEST > _ROOM:
        return _LOWEST, first - 1
    if 65_535 - last > _ROOM:
        return last + 1, 65_535
    return 1_024, 65_535


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on now and no outgoing connection will be given."""
    lowest, highest = draw_range()
    for _ in range(200):
        port = random.randint(lowest, highest)  # noqa: S311 (spreading draws, not a secret)
        if port in _handed_out:
            continue
        with socket.socket() as probe:
            try:
                probe.bind((host, port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError(f"no free port between {lowest} and {highest} on {host}")
