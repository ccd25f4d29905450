"""Running the simulator: in-process for tests and benchmarks, or as the console script."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import datetime

import uvicorn

from fragmenty_shared.ports import free_port
from fragmenty_simulator.app import Simulator, SimulatorConfig, create_app
from fragmenty_simulator.faults import Faults
from fragmenty_simulator.market import Market


@dataclass
class RunningSimulator:
    base_url: str
    simulator: Simulator


def build_simulator(
    listings: int,
    seed: int,
    *,
    config: SimulatorConfig | None = None,
    faults: Faults | None = None,
    epoch: datetime | None = None,
) -> Simulator:
    config = config or SimulatorConfig(seed=seed)
    return Simulator(Market.generate(listings, seed, epoch), faults or Faults(), config)


@contextlib.asynccontextmanager
async def running_simulator(
    simulator: Simulator, host: str = "127.0.0.1", port: int | None = None
) -> AsyncIterator[RunningSimulator]:
    """Serve ``simulator`` in this event loop until the block ends."""
    port = port or free_port(host)
    config = uvicorn.Config(
        create_app(simulator), host=host, port=port, log_level="warning", access_log=False
    )
    server = _QuietServer(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()  # raises the startup error
        await asyncio.sleep(0.02)
    try:
        yield RunningSimulator(f"http://{host}:{port}", simulator)
    finally:
        server.should_exit = True
        await task


class _QuietServer(uvicorn.Server):
    """A server inside a test or benchmark: the host process, not uvicorn, owns the signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield
