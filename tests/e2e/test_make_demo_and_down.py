"""`make demo` in one terminal, `make down` in another: nothing of the run is left.

The run gets ports, a namespace, a database and a data directory of its own, and points at the
shared broker and database as external servers, so `make down` has no infrastructure of its own
to stop and the servers other tests use stay up.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from fragmenty_shared.settings import Settings
from tests.support.private_servers import REPO_ROOT, free_port
from tests.support.processes import service_environment, wait_until

pytestmark = pytest.mark.slow

PORT_VARIABLES = (
    "FRAGMENTY_API_PORT",
    "FRAGMENTY_NOTIFIER_PORT",
    "FRAGMENTY_INGEST_PORT",
    "FRAGMENTY_CRAWLER_PORT",
    "FRAGMENTY_ALERTS_PORT",
    "FRAGMENTY_SIMULATOR_PORT",
    "FRAGMENTY_DEMO_RECEIVER_PORT",
)


def listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def alive(pid: int) -> bool:
    """Running or stopped, not exited (a zombie has exited: only its parent's wait is left)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def pids_carrying(token: str) -> list[int]:
    needle = f"FRAGMENTY_RUN_TOKEN={token}".encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                environ = (entry / "environ").read_bytes().split(b"\0")
            except OSError:
                continue
            if needle in environ:
                pids.append(int(entry.name))
    return pids


@pytest.fixture
def demo_env(settings: Settings, tmp_path: Path) -> dict[str, str]:
    env = service_environment(
        settings,
        FRAGMENTY_DATA_DIR=str(tmp_path / "data"),
        FRAGMENTY_CRAWL_EVERY_S="600",
        FRAGMENTY_SIMULATOR_LISTINGS="60",  # a small market: the test is about starting and stopping
    )
    env.update({variable: str(free_port()) for variable in PORT_VARIABLES})
    env["FRAGMENTY_NOTIFIER_PUBLIC_URL"] = f"ws://127.0.0.1:{env['FRAGMENTY_NOTIFIER_PORT']}/ws"
    env.pop("MAKEFLAGS", None)
    return env


@pytest.fixture
def first_run(demo_env: dict[str, str], tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    log = (tmp_path / "make-demo.log").open("wb")
    process = subprocess.Popen(
        ["make", "demo"],
        cwd=REPO_ROOT,
        env=demo_env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        yield process
    finally:
        if process.poll() is None:  # the test failed before `make down` worked: clean up
            subprocess.run(["make", "down"], cwd=REPO_ROOT, env=demo_env, timeout=60, check=False)
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)
        log.close()


def make(target: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", target],
        cwd=REPO_ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def ports_of(env: dict[str, str]) -> list[int]:
    return [int(env[variable]) for variable in PORT_VARIABLES]


async def test_make_down_stops_every_service_of_make_demo(
    demo_env: dict[str, str], first_run: subprocess.Popen[bytes], tmp_path: Path
) -> None:
    ports = ports_of(demo_env)

    async def all_listening() -> bool:
        assert first_run.poll() is None, (tmp_path / "make-demo.log").read_text()[-3000:]
        return all(listening(port) for port in ports)

    await wait_until(all_listening, timeout_s=120, what="every service of make demo listening")
    async with httpx.AsyncClient() as client:
        health = await client.get(f"http://127.0.0.1:{demo_env['FRAGMENTY_API_PORT']}/healthz")
    assert health.status_code == 200
    record = json.loads((tmp_path / "data" / "run" / "services.json").read_text())
    token = record["token"]
    assert set(record["children"]) == {
        "simulator",
        "ingest",
        "api",
        "notifier",
        "alerts",
        "webhook-receiver",
        "crawler",
    }
    ours = pids_carrying(token)
    assert len(ours) >= 7  # each service, and uv's python under it

    # A second run says at once which port is taken, and by what, and starts nothing.
    second = await asyncio.to_thread(make, "demo", demo_env)
    assert second.returncode != 0
    api_port = demo_env["FRAGMENTY_API_PORT"]
    assert f"api: port {api_port} is taken by pid" in second.stderr
    assert "fragmenty-api" in second.stderr
    assert "`make down` stops it" in second.stderr
    assert sorted(pids_carrying(token)) == sorted(ours)  # nothing new was started

    down = await asyncio.to_thread(make, "down", demo_env)
    assert down.returncode == 0, down.stderr
    assert "every service of the run is stopped" in down.stderr
    assert first_run.wait(30) == 0
    assert [port for port in ports if listening(port)] == []
    assert pids_carrying(token) == []
    assert [pid for pid in ours if alive(pid)] == []
    assert not (tmp_path / "data" / "run" / "services.json").exists()
