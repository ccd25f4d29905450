"""A real Prometheus, with the shipped scrape configuration, finds every `make up` service up.

The services start the way `make up` starts them (`uv run honcho start -f Procfile` from the
repository root) with this test's own namespace and database, on free ports so a developer's
`make up` on the same machine is left alone; the crawler loops against a small local Fragment
simulator (never fragment.com). Prometheus runs deploy/prometheus/prometheus.local.yml with only
the target ports changed to those free ports.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from faststream.rabbit import RabbitBroker
from pymongo.asynchronous.database import AsyncDatabase

from fragmenty_shared.settings import Settings
from tests.support.private_servers import free_port
from tests.unit.deploy.repo import (
    PROMETHEUS_ALERT_TESTS,
    PROMETHEUS_COMPOSE,
    PROMETHEUS_LOCAL,
    ROOT,
    SERVICE_PORTS,
    alert_queries,
    dashboard_queries,
    exported_series,
    load_yaml,
    metrics_queried,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(420)]

STARTUP_DEADLINE_S = 240.0
HONCHO_PID = re.compile(r"started \(pid=(\d+)\)")


def tool(name: str) -> str:
    path = shutil.which(name) or shutil.which(name, path="/usr/bin:/usr/sbin")
    if path is None:
        pytest.fail(f"{name} is not installed: run `scripts/infra.sh test-tools` (make test does)")
    return path


def stop(process: subprocess.Popen[bytes], children: Sequence[int] = ()) -> None:
    """SIGTERM (honcho passes it on), then SIGKILL whatever of ours is left."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
    for pid in children:  # honcho puts each service in a process group of its own
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)


@pytest.fixture
def ports() -> dict[str, int]:
    return {name: free_port() for name in SERVICE_PORTS}


@pytest.fixture
def simulator(tmp_path: Path) -> Iterator[str]:
    """A small Fragment simulator for the crawler to read."""
    port = free_port()
    log = (tmp_path / "simulator.log").open("wb")
    process = subprocess.Popen(
        [tool("uv"), "run", "fragmenty-simulator", "--port", str(port), "--listings", "60"],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(process)
        log.close()


@pytest.fixture
def make_up(
    settings: Settings,
    ports: dict[str, int],
    simulator: str,
    tmp_path: Path,
    broker: RabbitBroker,  # requested so this test's queues and exchanges are deleted afterwards
    mongo_db: AsyncDatabase[dict[str, Any]],  # and its database dropped
) -> Iterator[Path]:
    """Every service of the Procfile, as `make up` runs them; yields honcho's log."""
    env = dict(
        os.environ,
        FRAGMENTY_NAMESPACE=settings.namespace,
        FRAGMENTY_MONGODB_DATABASE=settings.mongodb_database,
        FRAGMENTY_HOST="127.0.0.1",
        FRAGMENTY_FRAGMENT_URL=simulator,
        FRAGMENTY_CRAWL_EVERY_S="30",
        **{f"FRAGMENTY_{name.upper()}_PORT": str(port) for name, port in ports.items()},
    )
    # honcho lets a .env file override the environment; a developer's .env must not move this
    # test onto the real namespace, database or ports, so honcho reads an empty one instead.
    no_env_file = tmp_path / "empty.env"
    no_env_file.touch()
    log_path = tmp_path / "honcho.log"
    log = log_path.open("wb")
    process = subprocess.Popen(
        [tool("uv"), "run", "honcho", "start", "-f", "Procfile", "-e", str(no_env_file)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        yield log_path
    finally:
        children = [int(pid) for pid in HONCHO_PID.findall(log_path.read_text(errors="replace"))]
        stop(process, children)
        log.close()


def scrape_config_for(ports: dict[str, int], directory: Path) -> Path:
    """The shipped local configuration with each target moved to this test's port."""
    config = load_yaml(PROMETHEUS_LOCAL)
    for job in config["scrape_configs"]:
        for static in job["static_configs"]:
            static["targets"] = [
                target.replace(f":{SERVICE_PORTS[job['job_name']]}", f":{ports[job['job_name']]}")
                for target in static["targets"]
            ]
    # Rule files are relative to the configuration's own directory.
    config["rule_files"] = [str(PROMETHEUS_LOCAL.parent / name) for name in config["rule_files"]]
    path = directory / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    return path


def promtool_check(path: Path) -> None:
    result = subprocess.run(
        [tool("promtool"), "check", "config", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, f"promtool check config {path}:\n{result.stdout}{result.stderr}"


@pytest.fixture
def prometheus(ports: dict[str, int], tmp_path: Path) -> Iterator[str]:
    config = scrape_config_for(ports, tmp_path)
    promtool_check(config)
    port = free_port()
    log = (tmp_path / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [
            tool("prometheus"),
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(process)
        log.close()


def target_health(prometheus_url: str) -> dict[str, str]:
    """job -> health ("up", "down", "unknown") of each active target."""
    try:
        response = httpx.get(f"{prometheus_url}/api/v1/targets", timeout=5)
    except httpx.HTTPError:
        return {}
    if response.status_code != 200:
        # Prometheus answers 503 "Service Unavailable" (plain text) until it has started.
        return {}
    answer = response.json()
    return {target["labels"]["job"]: target["health"] for target in answer["data"]["activeTargets"]}


def tail(path: Path, lines: int = 60) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


@pytest.mark.parametrize(
    "shipped", [PROMETHEUS_COMPOSE, PROMETHEUS_LOCAL], ids=["compose", "local"]
)
def test_promtool_accepts_the_shipped_configuration(shipped: Path) -> None:
    promtool_check(shipped)


def test_every_alert_fires_when_it_should_and_only_then() -> None:
    result = subprocess.run(
        [tool("promtool"), "test", "rules", PROMETHEUS_ALERT_TESTS.name],
        cwd=PROMETHEUS_ALERT_TESTS.parent,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    tested = {
        case["alertname"]
        for test in load_yaml(PROMETHEUS_ALERT_TESTS)["tests"]
        for case in test["alert_rule_test"]
    }
    assert tested == {name for name, _ in alert_queries()}, "every alert needs a test case"


def test_every_make_up_service_is_up_in_prometheus(
    make_up: Path, prometheus: str, ports: dict[str, int]
) -> None:
    deadline = time.monotonic() + STARTUP_DEADLINE_S
    health: dict[str, str] = {}
    while time.monotonic() < deadline:
        health = target_health(prometheus)
        if set(health) == set(SERVICE_PORTS) and set(health.values()) == {"up"}:
            break
        time.sleep(2)
    assert health == dict.fromkeys(SERVICE_PORTS, "up"), (
        f"targets: {health}\n--- make up (honcho) log:\n{tail(make_up)}"
    )

    # What Prometheus stored is what the services export: a build_info series from every job.
    answer = httpx.get(
        f"{prometheus}/api/v1/query", params={"query": "fragmenty_build_info"}, timeout=5
    ).json()
    scraped = {series["metric"]["job"] for series in answer["data"]["result"]}
    assert scraped == set(SERVICE_PORTS)

    # Every metric the Grafana dashboard queries is one the running services really export.
    exported: set[str] = set()
    for port in ports.values():
        exported |= exported_series(httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text)
    missing = {name: panels for name, panels in metrics_queried().items() if name not in exported}
    assert not missing, (
        f"the dashboard or the alerts query metrics the services do not export: {missing}"
    )

    # And Prometheus itself accepts every panel's query (Grafana's $__rate_interval made concrete).
    refused = {}
    for title, expr in dashboard_queries():
        query = expr.replace("$__rate_interval", "1m")
        answer = httpx.get(f"{prometheus}/api/v1/query", params={"query": query}, timeout=5)
        if answer.json().get("status") != "success":
            refused[title] = answer.text
    assert not refused, f"Prometheus refuses these dashboard queries: {refused}"
