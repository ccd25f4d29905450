"""N worker processes on one port, so one instance uses every core of its machine.

One Python process runs on one core, and per-frame work is the notifier's limit. With
``FRAGMENTY_NOTIFIER_WORKERS`` > 1 (default: the cores this process may use) the parent starts
that many workers; each binds the port with ``SO_REUSEPORT``, so the kernel spreads new
connections over them, and each is a whole notifier: its own events queue
(``notifier.<instance>-w<k>``: every worker sees every event), its own hub and legacy lists.
What must hold for the machine is shared: the connection limits (a table in shared memory,
``admission.py``) and ``/metrics`` (``worker_metrics.py``).

The parent only supervises: it checks the port is free before it starts anyone (``SO_REUSEPORT``
would otherwise quietly share it with a stray older instance), forwards SIGTERM/SIGINT (each
worker says goodbye to its clients with 1001), and replaces a worker that dies, after clearing
its counts. A worker that dies within ``STARTUP_GRACE_S`` of its start (a broken configuration)
stops the whole instance instead of looping.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import secrets
import shutil
import signal
import socket
import tempfile
import threading
import time
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from pathlib import Path
from types import FrameType

from fragmenty_notifier.admission import clear_row, shared_table
from fragmenty_notifier.main import WorkerPlace, serve
from fragmenty_notifier.settings import NotifierSettings
from fragmenty_notifier.worker_metrics import peer_table, worker_file
from fragmenty_shared.event_loop import run as run_loop
from fragmenty_shared.logs import configure_logging

logger = logging.getLogger(__name__)

STARTUP_GRACE_S = 10.0
STOP_TIMEOUT_S = 20.0
LISTEN_BACKLOG = 2048


def run(settings: NotifierSettings) -> int:
    """Serve until told to stop; the exit status."""
    if settings.notifier_workers == 1:
        run_loop(serve(settings), settings.event_loop)
        return 0
    return Supervisor(settings).run()


def bind_shared(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` that other workers bind too (``SO_REUSEPORT``)."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(address)
    sock.listen(LISTEN_BACKLOG)
    sock.setblocking(False)
    return sock


def port_is_free(host: str, port: int) -> bool:
    """Whether nothing listens on the port, ``SO_REUSEPORT`` listeners included."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError:
            return False
    return True


def worker_settings(settings: NotifierSettings, index: int, base_id: str) -> NotifierSettings:
    """A worker's settings: an events queue of its own."""
    return settings.model_copy(update={"notifier_instance_id": f"{base_id[:28]}-w{index}"})


def worker_main(settings: NotifierSettings, place: WorkerPlace, parent: int) -> None:
    """A worker process: one notifier on the shared port."""
    # A process group of its own: a Ctrl-C in the terminal reaches the parent only, which
    # passes on one SIGTERM (a second signal would make uvicorn skip the goodbyes).
    os.setpgrp()
    threading.Thread(target=_stop_when_orphaned, args=(parent,), daemon=True).start()
    sock = bind_shared(settings.host, settings.notifier_port)
    run_loop(serve(settings, place, [sock]), settings.event_loop)


def _stop_when_orphaned(parent: int) -> None:
    """A worker whose parent was killed outright stops too, instead of serving forever."""
    while os.getppid() == parent:
        time.sleep(1.0)
    os.kill(os.getpid(), signal.SIGTERM)


class Supervisor:
    def __init__(self, settings: NotifierSettings) -> None:
        self._settings = settings
        self._workers = settings.notifier_workers
        # Fork: the parent has no threads and no event loop, and a forked worker starts in a
        # moment with everything already imported (spawn would import it all again, per worker).
        self._context = multiprocessing.get_context("fork")
        self._base_id = settings.notifier_instance_id or secrets.token_hex(4)
        self._table = shared_table(self._workers)
        self._peers = peer_table(self._workers)
        self._processes: dict[int, BaseProcess] = {}
        self._started_at: dict[int, float] = {}
        self._stopping = False

    def run(self) -> int:
        settings = self._settings
        configure_logging("notifier", level=settings.log_level, json_lines=settings.log_json)
        if not port_is_free(settings.host, settings.notifier_port):
            logger.error("port %d is already in use", settings.notifier_port)
            return 1
        metrics_dir = Path(tempfile.mkdtemp(prefix="fragmenty-notifier-metrics-"))
        previous = {sig: signal.signal(sig, self._stop) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            for index in range(self._workers):
                self._start(index, metrics_dir)
            logger.info("notifier: %d workers on port %d", self._workers, settings.notifier_port)
            return self._supervise(metrics_dir)
        finally:
            self._stop_all()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            shutil.rmtree(metrics_dir, ignore_errors=True)

    def _start(self, index: int, metrics_dir: Path) -> None:
        place = WorkerPlace(index, self._workers, self._table, self._peers, metrics_dir)
        process = self._context.Process(
            target=worker_main,
            args=(worker_settings(self._settings, index, self._base_id), place, os.getpid()),
            name=f"notifier-worker-{index}",
        )
        process.start()
        self._processes[index] = process
        self._started_at[index] = time.monotonic()

    def _supervise(self, metrics_dir: Path) -> int:
        while not self._stopping:
            wait([process.sentinel for process in self._processes.values()], timeout=1.0)
            for index, process in list(self._processes.items()):
                if process.is_alive() or self._stopping:
                    continue
                lived = time.monotonic() - self._started_at[index]
                logger.error(
                    "worker %d exited (code %s) after %.0f s", index, process.exitcode, lived
                )
                clear_row(self._table, index)
                self._peers[index] = 0
                worker_file(metrics_dir, index).unlink(missing_ok=True)
                if lived < STARTUP_GRACE_S:
                    logger.error("worker %d failed at start-up; stopping", index)
                    return 1
                self._start(index, metrics_dir)
        return 0

    def _stop(self, signum: int, _: FrameType | None) -> None:
        self._stopping = True

    def _stop_all(self) -> None:
        for process in self._processes.values():
            if process.is_alive() and process.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for process in self._processes.values():
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join()
