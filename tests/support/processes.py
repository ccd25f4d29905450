"""Whole services as child processes, the way `make up` runs them, for end-to-end tests."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from fragmenty_shared.settings import Settings
from tests.support.private_servers import REPO_ROOT


async def wait_until(
    check: Callable[[], Awaitable[bool]], *, timeout_s: float, what: str, every_s: float = 0.2
) -> None:
    """Poll ``check`` until it is true; fail saying ``what`` did not happen in time."""
    deadline = time.monotonic() + timeout_s
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout_s} s")
        await asyncio.sleep(every_s)


def service_environment(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment a service needs to join this test's namespace, database and ports."""
    env = dict(os.environ)
    env.update(
        FRAGMENTY_RABBITMQ_URL=settings.rabbitmq_url,
        FRAGMENTY_MONGODB_URL=settings.mongodb_url,
        FRAGMENTY_MONGODB_DATABASE=settings.mongodb_database,
        FRAGMENTY_NAMESPACE=settings.namespace,
        FRAGMENTY_HOST="127.0.0.1",
        FRAGMENTY_API_PORT=str(settings.api_port),
        FRAGMENTY_NOTIFIER_PORT=str(settings.notifier_port),
        FRAGMENTY_INGEST_PORT=str(settings.ingest_port),
        FRAGMENTY_CRAWLER_PORT=str(settings.crawler_port),
    )
    env.update(extra)
    return env


@dataclass
class ServiceProcess:
    """One service run as ``python -m <module> <args>``, its output kept in a log file."""

    name: str
    module: str
    args: tuple[str, ...]
    env: Mapping[str, str]
    log_dir: Path
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def log_path(self) -> Path:
        return self.log_dir / f"{self.name}.log"

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", self.module, *self.args],
            env=dict(self.env),
            cwd=REPO_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    async def wait_ready(self, url: str, timeout_s: float = 60) -> None:
        """Until ``url`` answers 200; fail early, with the log, if the process died."""

        async def ready() -> bool:
            if self.process is not None and self.process.poll() is not None:
                raise AssertionError(
                    f"{self.name} exited with {self.process.returncode}:\n{self.log_tail()}"
                )
            try:
                async with httpx.AsyncClient(timeout=2) as client:
                    return (await client.get(url)).status_code == 200
            except httpx.HTTPError:
                return False

        try:
            await wait_until(ready, timeout_s=timeout_s, what=f"{self.name} ready at {url}")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n--- {self.name} log ---\n{self.log_tail()}") from None


@contextlib.contextmanager
def running(*services: ServiceProcess) -> Iterator[None]:
    """Start the services; stop them all (in reverse) however the block ends."""
    started: list[ServiceProcess] = []
    try:
        for service in services:
            service.start()
            started.append(service)
        yield
    finally:
        for service in reversed(started):
            service.stop()
