"""Runs the services of a Procfile in the foreground and stops exactly what it started.

    scripts/services.py check Procfile   say at once whether a port is taken (and by what)
    scripts/services.py run Procfile     start every entry, prefix its output, Ctrl-C stops all
    scripts/services.py down             stop what the recorded run started (from any terminal)
    scripts/services.py status           what the recorded run is and what of it is alive

`run` records a run token, its own pid and every child's pid (with the kernel's start time, so
a recycled pid is never mistaken for ours) in ``$FRAGMENTY_DATA_DIR/run/services.json``, and
hands the token to every child as ``FRAGMENTY_RUN_TOKEN``. `down` stops the processes that carry
that token or are recorded, and nothing else: no kill by name, no kill of a port's holder.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import secrets
import signal
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TOKEN_VARIABLE = "FRAGMENTY_RUN_TOKEN"
STOP_GRACE_S = 10.0
# Which port each Procfile entry listens on: the variable that sets it, and its default.
PORTS = {
    "api": ("FRAGMENTY_API_PORT", 8000),
    "notifier": ("FRAGMENTY_NOTIFIER_PORT", 8001),
    "ingest": ("FRAGMENTY_INGEST_PORT", 8002),
    "crawler": ("FRAGMENTY_CRAWLER_PORT", 8003),
    "alerts": ("FRAGMENTY_ALERTS_PORT", 8004),
    "simulator": ("FRAGMENTY_SIMULATOR_PORT", 8080),
    "webhook-receiver": ("FRAGMENTY_DEMO_RECEIVER_PORT", 8099),
}
_LISTEN = "0A"  # TCP_LISTEN in /proc/net/tcp


def say(message: str) -> None:
    print(f"services: {message}", file=sys.stderr, flush=True)


def run_file() -> Path:
    data_dir = Path(os.environ.get("FRAGMENTY_DATA_DIR") or ROOT / "data")
    return data_dir / "run" / "services.json"


# --- processes and sockets, read from /proc ---------------------------------------------------


def start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (field 22 of /proc/pid/stat)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its last ')'.
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[19])


def command_line(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return "?"
    return " ".join(part.decode(errors="replace") for part in raw.split(b"\0") if part) or "?"


def pids_with_token(token: str) -> list[int]:
    """Every live process whose environment carries this run's token."""
    needle = f"{TOKEN_VARIABLE}={token}".encode()
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if needle in environ.split(b"\0"):
            found.append(int(entry.name))
    return found


def listening_inodes(port: int) -> set[str]:
    """Socket inodes listening on ``port`` (IPv4 or IPv6, any address)."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            if local_port == port and fields[3] == _LISTEN:
                inodes.add(fields[9])
    return inodes


def holders_of(inodes: set[str]) -> list[int]:
    """The pids that have one of these sockets open."""
    wanted = {f"socket:[{inode}]" for inode in inodes}
    holders: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if any(os.readlink(fd) in wanted for fd in (entry / "fd").iterdir()):
                holders.append(int(entry.name))
    return holders


def describe_port(port: int) -> str | None:
    """None when nothing listens on the port; else who does, as a user should read it."""
    inodes = listening_inodes(port)
    if not inodes:
        return None
    holders = holders_of(inodes)
    if not holders:
        return f"port {port} is taken (by a process this user cannot see)"
    who = "; ".join(f"pid {pid}: {command_line(pid)[:120]}" for pid in holders)
    return f"port {port} is taken by {who}"


# --- the Procfile --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    name: str
    command: str

    def port(self) -> int | None:
        if self.name not in PORTS:
            return None
        variable, default = PORTS[self.name]
        return int(os.environ.get(variable) or default)


def read_procfile(path: Path) -> list[Entry]:
    entries = []
    for line in path.read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, _, command = line.partition(":")
        entries.append(Entry(name.strip(), command.strip()))
    return entries


# --- the run record ------------------------------------------------------------------------------


@dataclass
class RunRecord:
    token: str
    supervisor: tuple[int, int | None]  # pid, start ticks
    procfile: str
    started_at: str
    children: dict[str, tuple[int, int | None]]

    def save(self) -> None:
        path = run_file()
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps(self.__dict__, indent=2))
        temporary.replace(path)

    @classmethod
    def load(cls) -> RunRecord | None:
        try:
            data: dict[str, Any] = json.loads(run_file().read_text())
            return cls(
                token=data["token"],
                supervisor=(data["supervisor"][0], data["supervisor"][1]),
                procfile=data["procfile"],
                started_at=data["started_at"],
                children={name: (pid, ticks) for name, (pid, ticks) in data["children"].items()},
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def alive(self) -> list[int]:
        """Our processes still alive: recorded ones (same start time) and any carrying the token."""
        recorded = [self.supervisor, *self.children.values()]
        pids = {pid for pid, ticks in recorded if ticks is not None and start_ticks(pid) == ticks}
        return sorted(pids | set(pids_with_token(self.token)))


# --- check ---------------------------------------------------------------------------------------


def problems_before_start(entries: list[Entry]) -> list[str]:
    problems = []
    record = RunRecord.load()
    if record is not None and record.alive():
        problems.append(
            f"a run started {record.started_at} from {record.procfile} is still alive "
            f"(pids {', '.join(map(str, record.alive()))}): `make down` stops it"
        )
    for entry in entries:
        port = entry.port()
        taken = None if port is None else describe_port(port)
        if taken:
            variable = PORTS[entry.name][0]
            problems.append(f"{entry.name}: {taken} (free it, or set {variable})")
    return problems


def check(procfile: Path) -> int:
    problems = problems_before_start(read_procfile(procfile))
    for problem in problems:
        say(problem)
    return 1 if problems else 0


# --- run -----------------------------------------------------------------------------------------


def _exec_form(command: str) -> str:
    """``A=1 cmd args`` -> ``A=1 exec cmd args``: the shell becomes the service, so this
    supervisor is its parent, reaps it, and a signal to it reaches the service itself."""
    words = command.split(" ")
    assignments = 0
    while assignments < len(words) and re.match(
        r"^[A-Za-z_][A-Za-z0-9_]*=\S*$", words[assignments]
    ):
        assignments += 1
    return " ".join([*words[:assignments], "exec", *words[assignments:]])


async def _pump(name: str, width: int, stream: asyncio.StreamReader) -> None:
    prefix = f"{name:<{width}} | ".encode()
    while line := await stream.readline():
        sys.stdout.buffer.write(prefix + line)
        sys.stdout.buffer.flush()


def _signal_group(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signum)


async def _stop_children(children: dict[str, asyncio.subprocess.Process]) -> None:
    running = [p for p in children.values() if p.returncode is None]
    for process in running:
        _signal_group(process.pid, signal.SIGTERM)
    waits = [asyncio.create_task(p.wait()) for p in running]
    if waits:
        _, pending = await asyncio.wait(waits, timeout=STOP_GRACE_S)
        for process in running:
            # Whatever is left in each group (uv's child, a shell's) goes too.
            _signal_group(process.pid, signal.SIGKILL if pending else signal.SIGTERM)
        await asyncio.gather(*waits)


async def run(procfile: Path) -> int:
    entries = read_procfile(procfile)
    if problems := problems_before_start(entries):
        for problem in problems:
            say(problem)
        return 1
    token = secrets.token_hex(8)
    env = {**os.environ, TOKEN_VARIABLE: token}
    width = max(len(entry.name) for entry in entries)
    children: dict[str, asyncio.subprocess.Process] = {}
    record = RunRecord(
        token=token,
        supervisor=(os.getpid(), start_ticks(os.getpid())),
        procfile=str(procfile),
        started_at=datetime.now(UTC).isoformat(timespec="seconds"),
        children={},
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(signum, stop.set)
    pumps = []
    try:
        for entry in entries:
            process = await asyncio.create_subprocess_exec(
                "/bin/sh",
                "-c",
                _exec_form(entry.command),
                cwd=ROOT,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,  # its own process group, so stopping it reaches uv's child
            )
            children[entry.name] = process
            record.children[entry.name] = (process.pid, start_ticks(process.pid))
            record.save()
            assert process.stdout is not None
            pumps.append(asyncio.create_task(_pump(entry.name, width, process.stdout)))
            say(f"started {entry.name} (pid {process.pid}): {entry.command}")
        api_port = next((e.port() for e in entries if e.name == "api"), None)
        if api_port is not None:
            say(f"pages on http://127.0.0.1:{api_port}/ and API docs on /docs")
        say(f"run token {token}; Ctrl-C here or `make down` elsewhere stops every service")
        exits = [asyncio.create_task(p.wait(), name=n) for n, p in children.items()]
        stopping = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait([*exits, stopping], return_when=asyncio.FIRST_COMPLETED)
        for task in exits:
            if task in done:
                say(f"{task.get_name()} exited with {task.result()}: stopping the others")
        return 0 if stopping in done else 1
    finally:
        say("stopping")
        await _stop_children(children)
        for pump in pumps:
            pump.cancel()
        with contextlib.suppress(OSError):
            if (current := RunRecord.load()) is not None and current.token == token:
                run_file().unlink()
        say("stopped")


# --- down and status -----------------------------------------------------------------------------


def _wait_gone(pids: list[int], deadline: float) -> list[int]:
    while pids and time.monotonic() < deadline:
        time.sleep(0.1)
        pids = [pid for pid in pids if _exists(pid)]
    return pids


def _exists(pid: int) -> bool:
    """Running or stopped; a zombie has exited (only its parent's wait is left)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _terminate(pids: list[int], signum: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signum)


def down() -> int:
    record = RunRecord.load()
    if record is None:
        say("no run recorded: nothing to stop")
        return 0
    supervisor_pid, supervisor_ticks = record.supervisor
    if start_ticks(supervisor_pid) == supervisor_ticks:
        # The supervisor stops its children in order and removes the record.
        say(f"stopping the run started {record.started_at} (pid {supervisor_pid})")
        _terminate([supervisor_pid], signal.SIGTERM)
        _wait_gone([supervisor_pid], time.monotonic() + STOP_GRACE_S + 5)
    leftovers = record.alive()
    if leftovers:
        say(f"stopping what is left of run {record.token}: pids {leftovers}")
        _terminate(leftovers, signal.SIGTERM)
        leftovers = _wait_gone(leftovers, time.monotonic() + STOP_GRACE_S)
        _terminate(leftovers, signal.SIGKILL)
        leftovers = _wait_gone(leftovers, time.monotonic() + 5)
    with contextlib.suppress(OSError):
        run_file().unlink()
    if leftovers:
        say(f"could not stop pids {leftovers}")
        return 1
    say("every service of the run is stopped")
    return 0


def status() -> int:
    record = RunRecord.load()
    if record is None:
        print("services: none running (no run recorded)")
        return 0
    alive = record.alive()
    print(f"services: run {record.token} from {record.procfile}, started {record.started_at}")
    for name, (pid, _) in record.children.items():
        print(f"  {name:<10} pid {pid:<8} {'running' if pid in alive else 'gone'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("check", "run"):
        commands.add_parser(name).add_argument("procfile", type=Path)
    commands.add_parser("down")
    commands.add_parser("status")
    args = parser.parse_args(argv)
    if args.command == "check":
        return check(args.procfile)
    if args.command == "run":
        return asyncio.run(run(args.procfile))
    if args.command == "down":
        return down()
    return status()


if __name__ == "__main__":
    sys.exit(main())
