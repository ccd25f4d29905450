"""Private RabbitMQ and FerretDB servers for crash tests.

Crash tests restart the broker or the database mid-stream. Doing that to the shared servers would
break every other test running at the time, so each such test starts its own server on free ports,
with its own data, and stops it afterwards. These are real servers, not fakes.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from fragmenty_shared.ports import free_port as free_port  # re-exported: tests take it from here

REPO_ROOT = Path(__file__).resolve().parents[2]


def wait_for_port(port: int, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.2)
    raise TimeoutError(f"{what} did not listen on port {port} within {timeout_s} s")


def wait_for_port_closed(port: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), 0.5):
                pass
        except OSError:
            return
        time.sleep(0.2)
    raise TimeoutError(f"port {port} still open after {timeout_s} s")


@dataclass
class PrivateRabbitMQ:
    """A RabbitMQ node of its own (own node name, ports and data), started detached."""

    name: str = field(default_factory=lambda: f"fragmenty-test-{os.getpid()}-{free_port()}")
    port: int = field(default_factory=free_port)
    dist_port: int = field(default_factory=free_port)
    base: Path = field(init=False)

    def __post_init__(self) -> None:
        # The server drops to the rabbitmq user, so its folders must belong to that user.
        self.base = Path("/var/lib/rabbitmq/fragmenty-tests") / self.name
        self.base.mkdir(parents=True, exist_ok=True)
        shutil.chown(self.base.parent, "rabbitmq", "rabbitmq")
        shutil.chown(self.base, "rabbitmq", "rabbitmq")

    @property
    def node(self) -> str:
        return f"{self.name}@localhost"

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            RABBITMQ_NODENAME=self.node,
            RABBITMQ_NODE_PORT=str(self.port),
            RABBITMQ_DIST_PORT=str(self.dist_port),
            RABBITMQ_MNESIA_BASE=str(self.base / "mnesia"),
            RABBITMQ_LOG_BASE=str(self.base / "log"),
            RABBITMQ_PID_FILE=str(self.base / "pid"),
            RABBITMQ_ENABLED_PLUGINS_FILE=str(self.base / "enabled_plugins"),
            RABBITMQ_CONFIG_FILE=str(self.base / "rabbitmq"),
        )
        return env

    def _ctl(self, *args: str) -> None:
        subprocess.run(
            # Not the server's environment: with RABBITMQ_DIST_PORT set, the CLI would try to
            # take the node's distribution port for itself.
            ["rabbitmqctl", "-n", self.node, *args],
            check=True,
            capture_output=True,
            timeout=120,
        )

    def start(self) -> None:
        (self.base / "enabled_plugins").write_text("[].\n")
        (self.base / "rabbitmq.conf").write_text(
            f"loopback_users = none\nlisteners.tcp.default = {self.port}\n"
        )
        subprocess.run(
            ["rabbitmq-server", "-detached"], env=self._env(), check=True, capture_output=True
        )
        # -detached returns before the node has registered itself; until it has, the CLI
        # answers "unavailable" instead of waiting, so ask again until it waits and succeeds.
        deadline = time.monotonic() + 90
        while True:
            try:
                self._ctl("await_startup")
                break
            except subprocess.CalledProcessError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        wait_for_port(self.port, 60, "private RabbitMQ")

    def stop(self) -> None:
        with contextlib.suppress(subprocess.SubprocessError):
            self._ctl("stop")
        wait_for_port_closed(self.port, 60)

    def restart(self, down_for_s: float = 1.0) -> None:
        """A full stop of the node and a fresh start on the same data: queues survive."""
        self.stop()
        time.sleep(down_for_s)
        self.start()

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)


@contextlib.contextmanager
def private_rabbitmq() -> Iterator[PrivateRabbitMQ]:
    if shutil.which("rabbitmq-server") is None and not Path("/usr/sbin/rabbitmq-server").exists():
        raise RuntimeError("rabbitmq-server is not installed; run scripts/infra.sh up")
    server = PrivateRabbitMQ()
    server.start()
    try:
        yield server
    finally:
        server.remove()


@dataclass
class PrivateFerretDB:
    """A FerretDB process of its own on a free port, with SQLite data in a temporary folder."""

    port: int = field(default_factory=free_port)
    data_dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="ferretdb-")))
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/"

    def start(self) -> None:
        binary = subprocess.run(
            [str(REPO_ROOT / "scripts" / "build-ferretdb.sh")],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        self.process = subprocess.Popen(
            [
                binary,
                "--handler=sqlite",
                f"--sqlite-url=file:{self.data_dir}/",
                f"--listen-addr=127.0.0.1:{self.port}",
                f"--state-dir={self.data_dir}",
                "--telemetry=disable",
                "--debug-addr=-",
                "--log-level=error",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port, 30, "private FerretDB")

    def kill(self) -> None:
        """SIGKILL, as a crash would: no clean shutdown."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)
        self.process = None

    def restart(self, down_for_s: float = 1.0) -> None:
        self.kill()
        time.sleep(down_for_s)
        self.start()

    def remove(self) -> None:
        self.kill()
        shutil.rmtree(self.data_dir, ignore_errors=True)


@contextlib.contextmanager
def private_ferretdb() -> Iterator[PrivateFerretDB]:
    server = PrivateFerretDB()
    server.start()
    try:
        yield server
    finally:
        server.remove()
