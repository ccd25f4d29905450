"""compose.yaml: every service healthy-checked, restarted, started after what it needs."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.unit.deploy.dockerfile import stages
from tests.unit.deploy.repo import (
    COMPOSE_FILE,
    ROOT,
    SERVICE_PORTS,
    load_yaml,
    service_dirs,
)

PINNED_IMAGE = re.compile(r"^[\w./-]+:v?\d+\.\d+\.\d+[\w.-]*(@sha256:[0-9a-f]{64})?$")
INTERPOLATION = re.compile(r"\$\{(?P<name>\w+)(?::?-(?P<default>[^}]*))?\}")


def interpolate(value: str, env: dict[str, str] | None = None) -> str:
    """Compose's ${NAME:-default} substitution, enough for this file."""
    env = env or {}
    return INTERPOLATION.sub(lambda m: env.get(m["name"], m["default"] or ""), value)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document = load_yaml(COMPOSE_FILE)
    assert isinstance(document, dict)
    return document


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose["services"]
    return found


def test_the_stack_has_the_broker_the_database_and_every_service(services):
    expected = {"rabbitmq", "mongo", *SERVICE_PORTS, "simulator", "prometheus", "grafana"}
    assert expected <= set(services)


def test_every_service_has_a_healthcheck(services):
    for name, service in services.items():
        check = service.get("healthcheck")
        assert check, f"{name} has no healthcheck"
        assert check["test"][0] in {"CMD", "CMD-SHELL"}, name
        assert not check.get("disable"), name
        for key in ("interval", "timeout", "retries"):
            assert key in check, f"{name}'s healthcheck has no {key}"


def test_every_service_restarts_by_itself(services):
    for name, service in services.items():
        assert service.get("restart") in {"unless-stopped", "always", "on-failure"}, name


def test_dependencies_wait_for_healthy_services_that_exist(services):
    for name, service in services.items():
        for dependency, condition in service.get("depends_on", {}).items():
            assert dependency in services, f"{name} depends on unknown {dependency}"
            assert condition["condition"] == "service_healthy", f"{name} -> {dependency}"


def test_python_services_wait_for_broker_and_database(services):
    for name in SERVICE_PORTS:
        depends_on = services[name]["depends_on"]
        assert {"rabbitmq", "mongo"} <= set(depends_on), name


def test_a_dependency_outside_the_default_stack_is_optional(services):
    for name, service in services.items():
        if service.get("profiles"):
            continue
        for dependency, condition in service.get("depends_on", {}).items():
            if services[dependency].get("profiles"):
                assert condition.get("required") is False, f"{name} -> {dependency}"


def test_python_services_are_built_as_their_own_target(services):
    built = {}
    for name, service in services.items():
        if "build" not in service:
            continue
        build = service["build"]
        assert build["context"] == ".", "images build from the workspace root"
        assert build["dockerfile"] == "services/Dockerfile"
        # The stage and the package it installs name the same service.
        assert build["target"] == build["args"]["SERVICE"], name
        assert build["target"] in {stage.name for stage in stages(ROOT / build["dockerfile"])}
        built[name] = Path("services") / build["target"]
    assert set(built.values()) == set(service_dirs())


def test_settings_come_from_env_file_with_container_addresses(services):
    for name in SERVICE_PORTS:
        service = services[name]
        env_files = service["env_file"]
        assert any(Path(entry["path"]).name == ".env" for entry in env_files), name
        environment = service["environment"]
        assert environment["FRAGMENTY_HOST"] == "0.0.0.0", name
        assert "@rabbitmq:5672/" in interpolate(environment["FRAGMENTY_RABBITMQ_URL"])
        assert interpolate(environment["FRAGMENTY_MONGODB_URL"]) == "mongodb://mongo:27017/"


def test_python_healthchecks_ask_each_service_its_own_readiness(services):
    for name, port in SERVICE_PORTS.items():
        service = services[name]
        check = " ".join(service["healthcheck"]["test"])
        ready_url = service["environment"].get("FRAGMENTY_READY_URL", "")
        assert f"127.0.0.1:{port}/readyz" in check + ready_url, name


def test_the_crawler_loops(services):
    command = [interpolate(part) for part in services["crawler"]["command"]]
    assert command[:2] == ["run", "--every"]
    assert int(command[2]) > 0


def test_third_party_images_are_pinned(services):
    for name, service in services.items():
        if "build" in service:
            continue
        image = service["image"]
        assert PINNED_IMAGE.match(image), f"{name}: {image} is not an exact version"


def test_the_database_is_mongo_7_and_the_broker_has_management(services):
    assert services["mongo"]["image"].startswith("mongo:7.")
    assert services["rabbitmq"]["image"].endswith("-management")


def run_crawler_entrypoint(service: dict[str, Any], tmp_path: Path, *, simulator: bool) -> str:
    """Run the crawler's entrypoint as the container would, with stand-ins for the programs it
    calls: `getent` resolves `simulator` only when asked to, `fragmenty-crawler` prints what it got.
    """
    bin_dir = tmp_path / ("with-simulator" if simulator else "without-simulator")
    bin_dir.mkdir()
    fakes = {
        "getent": f"#!/bin/sh\nexit {0 if simulator else 2}\n",
        "fragmenty-crawler": '#!/bin/sh\necho "$FRAGMENTY_FRAGMENT_URL ${FRAGMENTY_POLITENESS:-true} $*"\n',
    }
    for name, script in fakes.items():
        (bin_dir / name).write_text(script)
        (bin_dir / name).chmod(0o755)
    # Compose turns $$ into $ and substitutes ${...} from the environment.
    argv = [interpolate(part).replace("$$", "$") for part in service["entrypoint"]]
    argv += [interpolate(part) for part in service["command"]]
    env = {name: interpolate(str(value)) for name, value in service["environment"].items()}
    env["PATH"] = f"{bin_dir}:/usr/bin:/bin"
    result = subprocess.run(argv, env=env, capture_output=True, text=True, check=True)
    return result.stdout.strip()


def test_the_crawler_reads_fragment_com_by_default(services, tmp_path):
    output = run_crawler_entrypoint(services["crawler"], tmp_path, simulator=False)
    assert output == "https://fragment.com true run --every 600"


def test_profile_demo_puts_the_simulator_in_place_of_fragment_com(services, tmp_path):
    simulator = services["simulator"]
    assert simulator["profiles"] == ["demo"]
    port = simulator["ports"][0].rsplit(":", 1)[1]
    assert f"--port {port}" in " ".join(simulator["command"])
    output = run_crawler_entrypoint(services["crawler"], tmp_path, simulator=True)
    assert output == f"http://simulator:{port} false run --every 600"
    # The crawler waits for the simulator when (and only when) the profile runs it.
    assert services["crawler"]["depends_on"]["simulator"] == {
        "condition": "service_healthy",
        "required": False,
    }


def test_profile_observability_mounts_files_that_exist(services):
    for name in ("prometheus", "grafana"):
        service = services[name]
        assert service["profiles"] == ["observability"]
        for volume in service["volumes"]:
            source = volume.split(":", 1)[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name} mounts missing {source}"


def test_published_ports_stay_on_this_machine(services):
    for name, service in services.items():
        for mapping in service.get("ports", []):
            published = interpolate(str(mapping))
            assert published.startswith("127.0.0.1:"), f"{name} publishes {published}"
