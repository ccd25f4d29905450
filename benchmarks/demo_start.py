"""How soon `make demo` shows life: first listings and first `price_changed` at the API.

    uv run python benchmarks/demo_start.py [--listings 2000] [--timeout 180]

Runs `make demo` as a user would (the real Procfile.demo: simulator, ingest, api, notifier,
alerts, crawler), in a namespace, database, data folder and ports of its own against the
RabbitMQ and database already running, and measures from the moment every service answers
`/healthz`:

- ``first_listings_s``: until `GET /api/v1/listings` returns a listing;
- ``first_price_changed_s``: until `GET /api/v1/events?type=price_changed` returns an event;

plus ``healthz_s`` (from `make demo` to every `/healthz`). Then `make down`. Prints one JSON
line with the targets of issue 13 (30 s and 60 s). The run's queues and database are deleted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from fragmenty_shared.settings import Settings  # noqa: E402
from tests.support.private_servers import free_port  # noqa: E402
from tests.support.run_data import remove_run_data  # noqa: E402

SERVICES_WITH_HEALTH = ("API", "NOTIFIER", "INGEST", "CRAWLER", "ALERTS")


def log(message: str) -> None:
    print(f"bench demo: {message}", file=sys.stderr, flush=True)


def demo_environment(listings: int, data_dir: Path) -> dict[str, str]:
    base = Settings()
    run_id = uuid.uuid4().hex[:8]
    env = dict(os.environ)
    env.pop("MAKEFLAGS", None)
    env.update(
        FRAGMENTY_RABBITMQ_URL=base.rabbitmq_url,
        FRAGMENTY_MONGODB_URL=base.mongodb_url,
        FRAGMENTY_MONGODB_DATABASE=f"bench_demo_{run_id}",
        FRAGMENTY_NAMESPACE=f"benchdemo{run_id}",
        FRAGMENTY_HOST="127.0.0.1",
        FRAGMENTY_DATA_DIR=str(data_dir),
        FRAGMENTY_SIMULATOR_LISTINGS=str(listings),
        FRAGMENTY_LOG_LEVEL=os.environ.get("FRAGMENTY_LOG_LEVEL", "WARNING"),
    )
    for name in (*SERVICES_WITH_HEALTH, "SIMULATOR"):
        env[f"FRAGMENTY_{name}_PORT"] = str(free_port())
    env["FRAGMENTY_DEMO_RECEIVER_PORT"] = str(free_port())
    env["FRAGMENTY_NOTIFIER_PUBLIC_URL"] = f"ws://127.0.0.1:{env['FRAGMENTY_NOTIFIER_PORT']}/ws"
    return env


async def answers(client: httpx.AsyncClient, url: str) -> Any:
    """The JSON of a 200 answer, or None (not up yet, or not 200)."""
    try:
        response = await client.get(url, timeout=2)
    except httpx.HTTPError:
        return None
    return response.json() if response.status_code == 200 else None


async def measure(env: dict[str, str], timeout_s: float) -> dict[str, float | None]:
    started = time.monotonic()
    api = f"http://127.0.0.1:{env['FRAGMENTY_API_PORT']}"
    health = [
        f"http://127.0.0.1:{env[f'FRAGMENTY_{name}_PORT']}/healthz" for name in SERVICES_WITH_HEALTH
    ]
    found: dict[str, float | None] = {
        "healthz_s": None,
        "first_listings_s": None,
        "first_price_changed_s": None,
    }
    healthy_at = 0.0
    since = 0  # the event feed is read on from where the last poll stopped (next_since)
    async with httpx.AsyncClient() as client:
        while time.monotonic() - started < timeout_s:
            now = time.monotonic()
            if found["healthz_s"] is None:
                results = await asyncio.gather(*(answers(client, url) for url in health))
                if all(result is not None for result in results):
                    healthy_at = now
                    found["healthz_s"] = round(now - started, 1)
                    log(f"every /healthz answers after {found['healthz_s']} s")
            else:
                if found["first_listings_s"] is None:
                    page = await answers(client, f"{api}/api/v1/listings?limit=1")
                    if page and page.get("items"):
                        found["first_listings_s"] = round(now - healthy_at, 1)
                        log(f"first listings {found['first_listings_s']} s after /healthz")
                if found["first_price_changed_s"] is None:
                    page = await answers(
                        client, f"{api}/api/v1/events?type=price_changed&since={since}"
                    )
                    since = page["next_since"] if page else since
                    if page and page.get("items"):
                        found["first_price_changed_s"] = round(now - healthy_at, 1)
                        log(
                            f"first price_changed {found['first_price_changed_s']} s after /healthz"
                        )
                if None not in found.values():
                    break
            await asyncio.sleep(0.5)
    return found


async def cleanup(env: dict[str, str]) -> None:
    """Delete the run's queues and exchanges (quorum queues outlive it) and its database."""
    await remove_run_data(
        Settings(
            rabbitmq_url=env["FRAGMENTY_RABBITMQ_URL"],
            namespace=env["FRAGMENTY_NAMESPACE"],
            mongodb_url=env["FRAGMENTY_MONGODB_URL"],
            mongodb_database=env["FRAGMENTY_MONGODB_DATABASE"],
        )
    )


async def main(listings: int, timeout_s: float, keep_log: Path | None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-demo-") as folder:
        env = demo_environment(listings, Path(folder))
        log_path = Path(folder) / "make-demo.log"
        with log_path.open("wb") as output:
            demo = await asyncio.create_subprocess_exec(
                "make",
                "demo",
                cwd=REPO_ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            try:
                found = await measure(env, timeout_s)
            finally:
                down = await asyncio.create_subprocess_exec(
                    "make",
                    "down",
                    cwd=REPO_ROOT,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                await asyncio.wait_for(down.wait(), 60)
                try:
                    await asyncio.wait_for(demo.wait(), 30)
                except TimeoutError:
                    os.killpg(demo.pid, signal.SIGKILL)
                    await demo.wait()
                await cleanup(env)
        if None in found.values():
            log("the demo's log ends:\n" + log_path.read_text(errors="replace")[-3000:])
        if keep_log is not None:
            await asyncio.to_thread(shutil.copyfile, log_path, keep_log)
    listed, changed = found["first_listings_s"], found["first_price_changed_s"]
    return {
        "bench": "demo_start",
        "listings": listings,
        **found,
        "targets_met": {
            "first_listings_within_30s": listed is not None and listed <= 30,
            "first_price_changed_within_60s": changed is not None and changed <= 60,
        },
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listings", type=int, default=2000, help="simulated market size")
    parser.add_argument("--timeout", type=float, default=180, help="give up after (s)")
    parser.add_argument("--log", type=Path, help="keep the services' output (make demo's) here")
    arguments = parser.parse_args()
    print(json.dumps(asyncio.run(main(arguments.listings, arguments.timeout, arguments.log))))
