"""Fan-out benchmark: publish-to-receipt latency of price events through the notifier.

Runs the real notifier (``python -m fragmenty_notifier``) as a process of its own, opens the
WebSocket clients in a second process, and publishes ``PriceEvent``s to the events exchange from
this process, each stamped with its publish time. Every client subscribes to everything.

The client fleet is a Go program (``benchmarks/fanout_client``, standard library only, built
into ``~/.cache/fragmenty/bin`` on first use) when ``go`` is available, else a lean Python
asyncio client: real clients live on other machines, so the load generator should take as
little as possible of the cores the service under test runs on. ``--client go|python`` forces
one; the JSON line says which ran.

Four configurations, each a notifier of its own: one worker and the default worker count
(``FRAGMENTY_NOTIFIER_WORKERS``, the usable cores), each with per-event frames and with
``batch_ms=100`` subscriptions. The per-event default-workers configuration also runs a baseline
with one client and the main run (1,000 clients, 20 events/s, 30 s). Every configuration then
steps up in client count (``--steps``, 10 s each) until ``--max-failed-steps`` steps in a row are
not held, and reports the largest count held: p99 < 250 ms, every client got every event, none
was dropped. Targets: 10,000 clients held batched with the default workers, and with per-event
frames at least 1.6 x the one-worker count.

Prints one JSON line on stdout (progress goes to stderr). Assumes RabbitMQ runs
(``scripts/infra.sh up``); usage:
``uv run python benchmarks/fanout.py [--quick] [--client auto|go|python] [--steps 1000,2000]``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import json
import multiprocessing
import os
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from array import array
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Protocol

import httpx

from fragmenty_shared.broker import declare_events_exchange, make_broker
from fragmenty_shared.contracts import (
    Asset,
    EventType,
    ListingSnapshot,
    ListingStatus,
    PriceEvent,
    make_event_id,
)
from fragmenty_shared.settings import Settings
from fragmenty_shared.topology import PUBLISHED_AT_HEADER, Topology

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root
from tests.support.private_servers import free_port

HELD_P99_MS = 250.0
TARGET_P99_MS_AT_1000 = 100.0
TARGET_CLIENTS_HELD_BATCHED = 10_000
TARGET_WORKERS_GAIN = 1.6
CONNECT_BATCH = 250
STEP_FIELDS = ("clients", "p99_ms", "server_p99_bucket_ms", "delivered", "held")
SLUG_SEQUENCE = re.compile(rb'"slug":"b(\d{9})"')  # one per event; several in an events frame


def log(message: str) -> None:
    print(f"[fanout {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def raise_open_file_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else 65536
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, wanted), hard))


# --- the client process -------------------------------------------------------------------------


class LeanWebSocket(asyncio.Protocol):
    """Just enough of a WebSocket client: handshake, one subscribe, read text frames, pong."""

    def __init__(self, recorder: Recorder, batch_ms: int) -> None:
        self._recorder = recorder
        self._subscribe = json.dumps(
            {"action": "subscribe", "id": "all", "filter": {}, "batch_ms": batch_ms}
        ).encode()
        self._buffer = b""
        self._upgraded = False
        self.transport: asyncio.Transport | None = None
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        key = base64.b64encode(os.urandom(16)).decode()
        transport.write(
            (
                "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )

    def _send(self, opcode: int, payload: bytes) -> None:
        # Client frames must be masked; an all-zero mask leaves the payload as it is.
        length = len(payload)
        if length < 126:
            header = bytes([0x80 | opcode, 0x80 | length])
        else:
            header = bytes([0x80 | opcode, 0x80 | 126]) + length.to_bytes(2, "big")
        assert self.transport is not None
        self.transport.write(header + b"\x00\x00\x00\x00" + payload)

    def data_received(self, data: bytes) -> None:
        now = time.time()
        buffer = self._buffer + data
        if not self._upgraded:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                self._buffer = buffer
                return
            if not buffer.startswith(b"HTTP/1.1 101"):
                self._fail(buffer[:80].decode(errors="replace"))
                return
            self._upgraded = True
            buffer = buffer[end + 4 :]
            self._send(0x1, self._subscribe)
        offset = 0
        size = len(buffer)
        while size - offset >= 2:
            first, second = buffer[offset], buffer[offset + 1]
            length = second & 0x7F
            start = offset + 2
            if length == 126:
                if size - offset < 4:
                    break
                length = int.from_bytes(buffer[offset + 2 : offset + 4], "big")
                start = offset + 4
            elif length == 127:
                if size - offset < 10:
                    break
                length = int.from_bytes(buffer[offset + 2 : offset + 10], "big")
                start = offset + 10
            end = start + length
            if end > size:
                break
            opcode = first & 0x0F
            if opcode == 0x1:
                payload = buffer[start:end]
                sequences = SLUG_SEQUENCE.findall(payload)
                for sequence in sequences:
                    self._recorder.record(int(sequence), now)
                if not sequences and not self.ready.done() and b'"subscribed"' in payload:
                    self.ready.set_result(None)
            elif opcode == 0x9:
                self._send(0xA, buffer[start:end])
            elif opcode == 0x8:
                self._fail("closed by the server " + str(buffer[start : start + 2].hex()))
            offset = end
        self._buffer = buffer[offset:]

    def _fail(self, why: str) -> None:
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(why))
        if not self.closed:
            self.closed = True
            self._recorder.disconnected += 1
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail("connection lost")


@dataclass
class Recorder:
    """Receipts as two flat columns (sequence, receipt time), the shape the Go client writes."""

    sequences: array[int] = field(default_factory=lambda: array("I"))
    times: array[float] = field(default_factory=lambda: array("d"))
    disconnected: int = 0

    def record(self, sequence: int, at: float) -> None:
        self.sequences.append(sequence)
        self.times.append(at)


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def client_main(port: int, batch_ms: int, control: Connection) -> None:
    loop = asyncio.get_running_loop()
    recorder = Recorder()
    clients: list[LeanWebSocket] = []

    async def open_one() -> bool:
        try:
            _, client = await loop.create_connection(
                lambda: LeanWebSocket(recorder, batch_ms), "127.0.0.1", port
            )
            await asyncio.wait_for(client.ready, 30)
        except (OSError, ConnectionError, TimeoutError):
            return False
        clients.append(client)
        return True

    while True:
        command, argument = await loop.run_in_executor(None, control.recv)
        if command == "grow":
            failed = 0
            while len(clients) < argument:
                batch = min(CONNECT_BATCH, argument - len(clients))
                results = await asyncio.gather(*(open_one() for _ in range(batch)))
                failed += results.count(False)
                if failed > argument // 10:
                    break
            control.send(("grown", len(clients), failed))
        elif command == "cpu":
            control.send(("cpu", own_cpu_seconds()))
        elif command == "collect":
            cpu = own_cpu_seconds()
            control.send(
                ("collected", recorder.sequences, recorder.times, recorder.disconnected, cpu)
            )
            recorder.sequences, recorder.times = array("I"), array("d")
        elif command == "stop":
            for client in clients:
                if client.transport is not None:
                    client.transport.close()
            control.send(("stopped", None, None))
            return


def client_process(port: int, batch_ms: int, control: Connection) -> None:
    raise_open_file_limit()
    asyncio.run(client_main(port, batch_ms, control))


# --- the client fleet: a process of its own, Python or Go ----------------------------------------


@dataclass
class Collected:
    """What the clients received since the last collect: receipt ``i`` is event ``sequences[i]``
    at ``times[i]`` (unix seconds)."""

    sequences: array[int]
    times: array[float]
    disconnected: int
    cpu_s: float


class ClientFleet(Protocol):
    """The benchmark's WebSocket clients, in a process of their own. The calls block (``Bench``
    runs them in a thread); ``stop`` closes every client and ends the process."""

    name: str

    def grow(self, clients: int) -> tuple[int, int]:
        """Open clients until ``clients`` are open; returns (connected, failed)."""
        ...

    def cpu_seconds(self) -> float: ...

    def collect(self) -> Collected: ...

    def stop(self) -> None: ...


class PythonFleet:
    """``client_main`` in a spawned process, driven over a pipe."""

    name = "python"

    def __init__(self, port: int, batch_ms: int) -> None:
        context = multiprocessing.get_context("spawn")
        self._control, child = context.Pipe()
        self._process = context.Process(
            target=client_process, args=(port, batch_ms, child), daemon=True
        )
        self._process.start()

    def _ask(self, command: str, argument: object = None) -> tuple[Any, ...]:
        self._control.send((command, argument))
        answer: tuple[Any, ...] = self._control.recv()
        return answer

    def grow(self, clients: int) -> tuple[int, int]:
        _, connected, failed = self._ask("grow", clients)
        return int(connected), int(failed)

    def cpu_seconds(self) -> float:
        return float(self._ask("cpu")[1])

    def collect(self) -> Collected:
        _, sequences, times, disconnected, cpu = self._ask("collect")
        return Collected(sequences, times, disconnected, cpu)

    def stop(self) -> None:
        if self._process.is_alive():
            with contextlib.suppress(OSError, EOFError):
                self._control.send(("stop", None))
                if self._control.poll(10):
                    self._control.recv()
        self._process.join(10)
        if self._process.is_alive():
            self._process.terminate()


GO_CLIENT_SOURCE = Path(__file__).resolve().parent / "fanout_client"
GO_CLIENT_BIN = Path.home() / ".cache" / "fragmenty" / "bin"


class GoClientUnavailable(Exception):
    pass


def build_go_client() -> Path:
    """The Go client's binary, built once per content of its source (the hash is in the name)."""
    go = shutil.which("go")
    if go is None:
        raise GoClientUnavailable("go is not on PATH")
    source = b"".join((GO_CLIENT_SOURCE / name).read_bytes() for name in ("go.mod", "main.go"))
    binary = GO_CLIENT_BIN / f"fanout-client-{hashlib.sha256(source).hexdigest()[:16]}"
    if binary.exists():
        return binary
    GO_CLIENT_BIN.mkdir(parents=True, exist_ok=True)
    partial = binary.with_name(f"{binary.name}.{os.getpid()}.partial")
    log(f"building the Go client into {binary}")
    # Offline and with the installed toolchain only: the program needs nothing but the
    # standard library, and a toolchain download would need the internet.
    env = {**os.environ, "GOTOOLCHAIN": "local", "GOPROXY": "off"}
    try:
        built = subprocess.run(
            [go, "build", "-buildvcs=false", "-o", str(partial), "."],
            cwd=GO_CLIENT_SOURCE,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise GoClientUnavailable(f"go build did not run: {error}") from error
    if built.returncode != 0:
        partial.unlink(missing_ok=True)
        why = built.stderr.strip().splitlines()[-1:] or [f"exit {built.returncode}"]
        raise GoClientUnavailable(f"go build failed: {why[0]}")
    partial.replace(binary)  # atomic: a concurrent run never executes half a file
    return binary


class GoFleet:
    """The Go client (``benchmarks/fanout_client``) as a subprocess, one command a line on its
    stdin and one JSON answer a line on its stdout; receipts come back through a file."""

    name = "go"

    def __init__(self, binary: Path, port: int, batch_ms: int) -> None:
        self._process = subprocess.Popen(
            [str(binary), "-port", str(port), "-batch-ms", str(batch_ms)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        self._scratch = tempfile.TemporaryDirectory(prefix="fanout-")

    def _ask(self, command: str) -> dict[str, Any]:
        assert self._process.stdin is not None
        assert self._process.stdout is not None
        self._process.stdin.write(command + "\n")
        self._process.stdin.flush()
        line = self._process.stdout.readline()
        if not line:
            raise RuntimeError(f"the Go client exited (code {self._process.poll()})")
        answer: dict[str, Any] = json.loads(line)
        if "error" in answer:
            raise RuntimeError(f"the Go client: {answer['error']}")
        return answer

    def grow(self, clients: int) -> tuple[int, int]:
        answer = self._ask(f"grow {clients}")
        return int(answer["connected"]), int(answer["failed"])

    def cpu_seconds(self) -> float:
        return float(self._ask("cpu")["cpu"])

    def collect(self) -> Collected:
        path = Path(self._scratch.name) / "receipts"
        answer = self._ask(f"collect {path}")
        data = path.read_bytes()
        path.unlink()
        # count little-endian uint32 sequences, then count little-endian float64 times.
        count = int(answer["count"])
        sequences, times = array("I"), array("d")
        sequences.frombytes(data[: 4 * count])
        times.frombytes(data[4 * count :])
        if sys.byteorder == "big":
            sequences.byteswap()
            times.byteswap()
        return Collected(sequences, times, int(answer["disconnected"]), float(answer["cpu"]))

    def stop(self) -> None:
        if self._process.poll() is None:
            with contextlib.suppress(OSError, RuntimeError, ValueError):
                self._ask("stop")
        try:
            self._process.wait(10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._scratch.cleanup()


def go_client_or_reason(choice: str) -> Path | str:
    """The Go client's binary for ``--client auto|go``, or why the Python client runs instead."""
    if choice == "python":
        return "--client python"
    try:
        return build_go_client()
    except GoClientUnavailable as error:
        if choice == "go":
            raise SystemExit(f"--client go: {error}") from error
        return str(error)


def start_fleet(go_client: Path | str, port: int, batch_ms: int) -> ClientFleet:
    if isinstance(go_client, Path):
        return GoFleet(go_client, port, batch_ms)
    log(f"clients: the Python client ({go_client})")
    return PythonFleet(port, batch_ms)


# --- the notifier process -----------------------------------------------------------------------


def start_notifier(
    settings: Settings, port: int, workers: int, profile: str | None = None
) -> subprocess.Popen[bytes]:
    env = {
        "FRAGMENTY_NOTIFIER_WORKERS": str(workers),
        **os.environ,
        "FRAGMENTY_NAMESPACE": settings.namespace,
        "FRAGMENTY_MONGODB_DATABASE": settings.mongodb_database,
        "FRAGMENTY_NOTIFIER_PORT": str(port),
        "FRAGMENTY_NOTIFIER_MAX_CONNECTIONS": "100000",
        "FRAGMENTY_NOTIFIER_MAX_CONNECTIONS_PER_CLIENT": "100000",
        "FRAGMENTY_LOG_LEVEL": "WARNING",
    }
    profiler = ["-m", "cProfile", "-o", profile] if profile else []
    return subprocess.Popen(
        [sys.executable, *profiler, "-m", "fragmenty_notifier"], env=env, start_new_session=True
    )


def wait_ready(port: int, process: subprocess.Popen[bytes]) -> None:
    """Until /readyz answers 200 many times in a row: each request reaches one worker, so a
    run of them says every worker consumes its queue."""
    deadline = time.monotonic() + 90
    in_a_row = 0
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("the notifier exited during startup")
        ready = False
        with contextlib.suppress(httpx.HTTPError):
            ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200
        in_a_row = in_a_row + 1 if ready else 0
        if in_a_row >= 20:
            return
        time.sleep(0.05 if ready else 0.2)
    raise TimeoutError("the notifier did not become ready")


LATENCY_BUCKET = re.compile(
    r'^fragmenty_notifier_fanout_latency_seconds_bucket\{le="([^"]+)",origin="published"\} (\S+)$',
    re.MULTILINE,
)


def server_latency_buckets(port: int) -> dict[float, float]:
    """The notifier's own fan-out histogram (publication -> frame written), cumulative counts."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    return {float(bound): float(count) for bound, count in LATENCY_BUCKET.findall(text)}


def server_quantile_bound_ms(
    before: dict[float, float], after: dict[float, float], quantile: float
) -> float | None:
    """The histogram bucket (its upper bound, ms) that holds the phase's ``quantile``: what the
    notifier itself measured, without the clients' share of the latency."""
    deltas = sorted((bound, after[bound] - before.get(bound, 0.0)) for bound in after)
    if not deltas or deltas[-1][1] <= 0:
        return None
    total = deltas[-1][1]
    for bound, cumulative in deltas:
        if cumulative >= quantile * total:
            return bound * 1000
    return None


def cpu_seconds(pid: int) -> float:
    """CPU time of a process and its children (the notifier's workers)."""
    total = 0.0
    children: list[int] = []
    with contextlib.suppress(OSError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        for task in Path(f"/proc/{pid}/task").iterdir():
            children.extend(int(child) for child in (task / "children").read_text().split())
    return total + sum(cpu_seconds(child) for child in children)


# --- publishing and measuring -------------------------------------------------------------------


def bench_event(sequence: int) -> PriceEvent:
    moment = datetime.now(UTC)
    slug = f"b{sequence:09d}"
    return PriceEvent(
        event_id=make_event_id(Asset.USERNAME, slug, EventType.PRICE_CHANGED, moment),
        type=EventType.PRICE_CHANGED,
        asset=Asset.USERNAME,
        slug=slug,
        title=f"@{slug}",
        occurred_at=moment,
        old=ListingSnapshot(status=ListingStatus.AUCTION, price_ton=Decimal("100")),
        new=ListingSnapshot(status=ListingStatus.AUCTION, price_ton=Decimal("110.5")),
        change_pct=10.5,
    )


@dataclass
class Bench:
    settings: Settings
    topology: Topology
    fleet: ClientFleet
    notifier_pid: int
    notifier_port: int
    rate: float
    sequence: int = 100_000_000

    async def grow(self, clients: int) -> int:
        connected, failed = await asyncio.to_thread(self.fleet.grow, clients)
        log(f"{connected} clients connected ({failed} failed)")
        return connected

    async def run_phase(self, clients: int, duration_s: float) -> dict[str, Any]:
        broker = make_broker(self.settings)
        await broker.connect()
        published: dict[int, float] = {}
        cpu_before = cpu_seconds(self.notifier_pid)
        client_cpu_before = await asyncio.to_thread(self.fleet.cpu_seconds)
        load_before = os.getloadavg()[0]
        server_before = await asyncio.to_thread(server_latency_buckets, self.notifier_port)
        try:
            await declare_events_exchange(broker, self.topology)
            events = int(duration_s * self.rate)
            start = time.monotonic() + 0.2
            for index in range(events):
                self.sequence += 1
                event = bench_event(self.sequence)
                payload = event.model_dump_json()
                await asyncio.sleep(max(0.0, start + index / self.rate - time.monotonic()))
                stamp = time.time()
                published[self.sequence] = stamp
                await broker.publish(
                    payload,
                    exchange=self.topology.events_exchange,
                    routing_key=event.routing_key,
                    headers={PUBLISHED_AT_HEADER: repr(stamp)},
                    content_type="application/json",
                )
            await asyncio.sleep(2.0)  # let the last events arrive
        finally:
            await broker.stop()
        cpu_used = cpu_seconds(self.notifier_pid) - cpu_before
        server_after = await asyncio.to_thread(server_latency_buckets, self.notifier_port)
        collected = await asyncio.to_thread(self.fleet.collect)
        disconnected = collected.disconnected
        client_cpu_used = collected.cpu_s - client_cpu_before
        latencies = [
            (received - published[sequence]) * 1000
            for sequence, received in zip(collected.sequences, collected.times, strict=True)
            if sequence in published
        ]
        expected = clients * len(published)
        summary = summarise(latencies)
        delivered = len(latencies) / expected if expected else 0.0
        held = (
            bool(latencies)
            and summary["p99_ms"] < HELD_P99_MS
            and delivered >= 0.999
            and disconnected == 0
        )
        result = {
            "clients": clients,
            "events": len(published),
            "duration_s": duration_s,
            **summary,
            "delivered": round(delivered, 5),
            "dropped_clients": disconnected,
            # The notifier's own histogram: the bucket holding its p99, to tell its share of
            # the latency from the client process's.
            "server_p99_bucket_ms": server_quantile_bound_ms(server_before, server_after, 0.99),
            "notifier_cpu_pct": round(100 * cpu_used / (duration_s + 2.2), 1),
            "clients_cpu_pct": round(100 * client_cpu_used / (duration_s + 2.2), 1),
            # Other work on the machine competes for the same cores; it shows in the tail.
            "load_avg_1m": round(max(load_before, os.getloadavg()[0]), 2),
            "held": held,
        }
        log(json.dumps(result))
        return result


def summarise(latencies_ms: list[float]) -> dict[str, float]:
    if len(latencies_ms) < 2:
        return {"p50_ms": float("nan"), "p95_ms": float("nan"), "p99_ms": float("nan")}
    cuts = statistics.quantiles(latencies_ms, n=100, method="inclusive")
    return {
        "p50_ms": round(cuts[49], 2),
        "p95_ms": round(cuts[94], 2),
        "p99_ms": round(cuts[98], 2),
        "max_ms": round(max(latencies_ms), 2),
    }


async def delete_exchange(settings: Settings, topology: Topology) -> None:
    broker = make_broker(settings)
    await broker.connect()
    try:
        exchange = await broker.declare_exchange(topology.events_exchange)
        await exchange.delete()
    finally:
        await broker.stop()


@dataclass(frozen=True)
class Configuration:
    workers: int
    batch_ms: int

    @property
    def name(self) -> str:
        frames = f"batch_{self.batch_ms}ms" if self.batch_ms else "per_event"
        return f"workers_{self.workers}_{frames}"


async def step_up(bench: Bench, args: argparse.Namespace) -> tuple[int, list[dict[str, Any]]]:
    """Client counts in ascending order until ``max_failed_steps`` in a row are not held; the
    largest count held, and each step. A busy moment on a shared machine can spoil one step,
    so one miss does not end the climb."""
    held, missed, steps = 0, 0, []
    for count in args.steps:
        connected = await bench.grow(count)
        if connected < count:
            steps.append({"clients": count, "connected": connected, "held": False})
            break
        step = await bench.run_phase(connected, args.step_s)
        steps.append({k: step[k] for k in STEP_FIELDS})
        if step["held"]:
            held, missed = max(held, connected), 0
        else:
            missed += 1
            if missed >= args.max_failed_steps:
                break
    return held, steps


async def run_configuration(
    configuration: Configuration,
    args: argparse.Namespace,
    go_client: Path | str,
    settings: Settings,
    topology: Topology,
    with_main_run: bool,
) -> dict[str, Any]:
    """One notifier (workers, batch_ms) and its own client fleet: the largest count held."""
    log(f"--- {configuration.name}")
    port = free_port()
    notifier = start_notifier(settings, port, configuration.workers, args.profile)
    fleet: ClientFleet | None = None
    result: dict[str, Any] = {"workers": configuration.workers, "batch_ms": configuration.batch_ms}
    try:
        await asyncio.to_thread(wait_ready, port, notifier)
        fleet = start_fleet(go_client, port, configuration.batch_ms)
        result["client"] = fleet.name
        bench = Bench(settings, topology, fleet, notifier.pid, port, args.rate)
        if with_main_run:
            log("baseline: 1 client")
            await bench.grow(1)
            result["baseline"] = await bench.run_phase(1, args.baseline_s)
            log(f"main: {args.clients} clients, {args.rate} events/s, {args.duration} s")
            result["main"] = await bench.run_phase(await bench.grow(args.clients), args.duration)
        result["max_clients_held"], result["steps"] = await step_up(bench, args)
    finally:
        if fleet is not None:
            await asyncio.to_thread(fleet.stop)
        # SIGINT under a profiler: uvicorn re-raises the signal after its graceful shutdown,
        # and only an interrupt (not a termination) lets cProfile write its file.
        notifier.send_signal(signal.SIGINT if args.profile else signal.SIGTERM)
        try:
            notifier.wait(30)
        except subprocess.TimeoutExpired:
            notifier.kill()
    return result


async def run_some(
    configurations: list[Configuration],
    args: argparse.Namespace,
    go_client: Path | str,
    settings: Settings,
    topology: Topology,
) -> dict[str, Any]:
    """Only the climbs of the configurations asked for: no main run, no targets judged."""
    results = {}
    try:
        for configuration in configurations:
            result = await run_configuration(
                configuration, args, go_client, settings, topology, with_main_run=False
            )
            results[configuration.name] = result
    finally:
        with contextlib.suppress(Exception):
            await delete_exchange(settings, topology)
    return {
        "bench": "fanout_partial",
        "rate_events_per_s": args.rate,
        "max_clients_held": {name: result["max_clients_held"] for name, result in results.items()},
        "configurations": [
            {k: result[k] for k in ("workers", "batch_ms", "max_clients_held", "steps")}
            for result in results.values()
        ],
    }


def parse_configurations(text: str) -> list[Configuration]:
    """``2:100,1:0`` -> workers 2 with batch_ms 100, then one worker with per-event frames."""
    configurations = []
    for item in text.split(","):
        workers, _, batch_ms = item.partition(":")
        configurations.append(Configuration(int(workers), int(batch_ms or 0)))
    return configurations


async def run(args: argparse.Namespace) -> dict[str, Any]:
    run_id = uuid.uuid4().hex[:8]
    settings = Settings(namespace=f"bench{run_id}", mongodb_database=f"bench_{run_id}")
    topology = Topology(settings.namespace)
    go_client = await asyncio.to_thread(go_client_or_reason, args.client)  # builds before timing
    default = Configuration(args.workers, 0)
    configurations = args.configurations or [
        default,
        Configuration(1, 0),
        Configuration(args.workers, args.batch_ms),
        Configuration(1, args.batch_ms),
    ]
    if args.configurations:  # a partial run, for working on one configuration
        return await run_some(configurations, args, go_client, settings, topology)
    results: dict[str, dict[str, Any]] = {}
    try:
        for configuration in configurations:
            results[configuration.name] = await run_configuration(
                configuration, args, go_client, settings, topology, configuration == default
            )
    finally:
        with contextlib.suppress(Exception):
            await delete_exchange(settings, topology)

    main = results[default.name]["main"]
    held = {name: result["max_clients_held"] for name, result in results.items()}
    one_worker = held[Configuration(1, 0).name]
    gain = held[default.name] / one_worker if one_worker else None
    batched_default = held[Configuration(args.workers, args.batch_ms).name]
    return {
        "bench": "fanout",
        "client": results[default.name].get("client"),
        "rate_events_per_s": args.rate,
        "cpus": os.cpu_count(),
        "default_workers": args.workers,
        "batch_ms": args.batch_ms,
        "baseline": {
            k: results[default.name]["baseline"][k]
            for k in ("clients", "p50_ms", "p95_ms", "p99_ms")
        },
        "clients": main["clients"],
        "duration_s": args.duration,
        **{k: main[k] for k in ("p50_ms", "p95_ms", "p99_ms", "max_ms", "server_p99_bucket_ms")},
        **{k: main[k] for k in ("delivered", "notifier_cpu_pct", "clients_cpu_pct", "load_avg_1m")},
        "held_p99_limit_ms": HELD_P99_MS,
        "max_clients_held": held,
        "per_event_workers_gain": round(gain, 2) if gain is not None else None,
        "configurations": [
            {k: result[k] for k in ("workers", "batch_ms", "max_clients_held", "steps")}
            for result in results.values()
        ],
        "targets": {
            "p99_ms_at_main_run": TARGET_P99_MS_AT_1000,
            "clients_held_batched_default_workers": TARGET_CLIENTS_HELD_BATCHED,
            "per_event_workers_gain": TARGET_WORKERS_GAIN,
        },
        "meets_targets": main["p99_ms"] < TARGET_P99_MS_AT_1000
        and batched_default >= TARGET_CLIENTS_HELD_BATCHED
        and gain is not None
        and gain >= TARGET_WORKERS_GAIN,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=1000, help="main run's clients")
    parser.add_argument("--rate", type=float, default=20.0, help="events per second")
    parser.add_argument("--duration", type=float, default=30.0, help="main run, seconds")
    parser.add_argument("--baseline-s", type=float, default=5.0)
    parser.add_argument("--step-s", type=float, default=10.0)
    parser.add_argument(
        "--steps",
        type=lambda text: [int(n) for n in text.split(",") if n],
        default=[1000, 2000, 3000, 5000, 7500, 10000, 12500, 15000],
        help="client counts each configuration climbs through (comma list)",
    )
    parser.add_argument(
        "--max-failed-steps", type=int, default=2, help="misses in a row that end a climb"
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=len(os.sched_getaffinity(0)),
        help="the default worker count (the notifier's own default: the usable cores)",
    )
    parser.add_argument("--batch-ms", type=int, default=100, help="the batched configurations")
    parser.add_argument(
        "--configurations",
        type=parse_configurations,
        help="only these climbs, as workers:batch_ms pairs (e.g. 2:100,1:0); no main run",
    )
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 50 clients, steps of 100 and 200, 3 s"
    )
    parser.add_argument(
        "--profile",
        help="run the notifier under cProfile, writing here (its main process: one worker)",
    )
    parser.add_argument(
        "--client",
        choices=("auto", "go", "python"),
        default="auto",
        help="the client fleet: the Go program when go is available (auto), or force one",
    )
    args = parser.parse_args()
    if args.quick:
        args.clients, args.duration, args.baseline_s = 50, 3.0, 2.0
        args.steps, args.step_s = [100, 200], 3.0
    raise_open_file_limit()
    print(json.dumps(asyncio.run(run(args))), flush=True)


if __name__ == "__main__":
    main()
