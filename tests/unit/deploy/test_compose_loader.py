"""compose.yaml loaded by compose-go, the loader of Docker Compose itself (no engine needed).

deploy/tools/compose-check.sh builds a small program around it (once per machine), so the file is
validated against the Compose schema, interpolated, merged and resolved per profile exactly as
`docker compose config` would do it.
"""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any

import pytest

from tests.unit.deploy.repo import COMPOSE_FILE, DEPLOY_DIR, ROOT, SERVICE_PORTS

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]  # the first run builds the tool

DEFAULT_STACK = {"rabbitmq", "mongo", *SERVICE_PORTS}


@pytest.fixture(scope="module")
def compose_check() -> str:
    return subprocess.run(
        [str(DEPLOY_DIR / "tools" / "compose-check.sh")],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout.strip()


def load(compose_check: str, *profiles: str) -> dict[str, Any]:
    # Only the file's own defaults: no developer .env or shell variable changes what is checked.
    env = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/")}
    args = [compose_check, "-dotenv=false"]
    for profile in profiles:
        args += ["-profile", profile]
    result = subprocess.run(
        [*args, str(COMPOSE_FILE)], capture_output=True, text=True, env=env, check=False
    )
    assert result.returncode == 0, result.stderr
    project: dict[str, Any] = json.loads(result.stdout)
    return project


def test_the_default_stack_loads_without_the_profiled_services(compose_check):
    project = load(compose_check)
    assert set(project["services"]) == DEFAULT_STACK
    assert project["name"] == "fragmenty"


def test_profile_demo_adds_the_simulator_the_crawler_waits_for(compose_check):
    services = load(compose_check, "demo")["services"]
    assert set(services) == DEFAULT_STACK | {"simulator"}
    assert services["crawler"]["depends_on"]["simulator"]["condition"] == "service_healthy"


def test_profile_observability_adds_prometheus_and_grafana(compose_check):
    services = load(compose_check, "observability")["services"]
    assert set(services) == DEFAULT_STACK | {"prometheus", "grafana"}


def test_every_loaded_service_is_healthchecked_and_restarted(compose_check):
    services = load(compose_check, "demo", "observability")["services"]
    for name, service in services.items():
        assert service["healthcheck"]["test"], name
        assert service["restart"] == "unless-stopped", name
        for dependency in service.get("depends_on", {}).values():
            assert dependency["condition"] == "service_healthy", name


def test_interpolated_settings_reach_the_python_services(compose_check):
    services = load(compose_check)["services"]
    for name in SERVICE_PORTS:
        environment = services[name]["environment"]
        assert environment["FRAGMENTY_RABBITMQ_URL"] == "amqp://fragmenty:fragmenty@rabbitmq:5672/"
        assert environment["FRAGMENTY_MONGODB_URL"] == "mongodb://mongo:27017/"
        assert environment["FRAGMENTY_READY_URL"].endswith(f":{SERVICE_PORTS[name]}/readyz")
    assert services["crawler"]["command"] == ["run", "--every", "600"]
    assert services["rabbitmq"]["environment"]["RABBITMQ_DEFAULT_USER"] == "fragmenty"
