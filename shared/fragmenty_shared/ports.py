"""A free TCP port for a server that will bind it a moment later.

Binding port 0 hands out a port from the kernel's ephemeral range, the range outgoing connections
take their source ports from. Between the probe and the server's own bind, a connection to the
broker or the database can take that port, and the server then fails to start (CI saw the
crawler's ops server exit this way in `make demo`). So ports are drawn below the ephemeral range,
at random so that processes drawing at the same time rarely meet, never twice in one process, and
each is checked free by binding it.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path

_LOWEST = 20_000
_EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_handed_out: set[int] = set()


def _ephemeral_start() -> int:
    """The first port the kernel hands to outgoing connections (Linux's default where unknown)."""
    try:
        return int(_EPHEMERAL_RANGE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32_768


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on now and no outgoing connection will be given."""
    highest = max(_ephemeral_start() - 1, _LOWEST + 1_000)
    for _ in range(200):
        port = random.randint(_LOWEST, highest)  # noqa: S311 (spreading draws, not a secret)
        if port in _handed_out:
            continue
        with socket.socket() as probe:
            try:
                probe.bind((host, port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError(f"no free port between {_LOWEST} and {highest} on {host}")
