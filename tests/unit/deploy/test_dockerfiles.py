"""Each service's image, from services/Dockerfile: multi-stage uv build from the workspace, pinned
bases, non-root. Each test reads the image one service's build makes (``--target <service>
--build-arg SERVICE=<service>``)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.unit.deploy.checkov import assert_checkov_clean
from tests.unit.deploy.dockerfile import Stage, image_stages, stages
from tests.unit.deploy.repo import ROOT, SERVICE_PORTS, service_dirs, workspace_members

PINNED = re.compile(r"^[\w./-]+:v?\d+\.\d+(\.\d+)?[\w.-]*(@sha256:[0-9a-f]{64})?$")
SERVICES = [path.name for path in service_dirs()]
DOCKERFILE = ROOT / "services" / "Dockerfile"


def image_of(service: str) -> list[Stage]:
    return image_stages(DOCKERFILE, service, {"SERVICE": service})


def package_of(service: str) -> str:
    return f"fragmenty-{service}"


@pytest.fixture(params=SERVICES)
def service(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def built(service: str) -> list[Stage]:
    return image_of(service)


def test_every_service_has_a_final_stage_of_its_own():
    assert set(SERVICE_PORTS) <= set(SERVICES)
    names = {stage.name for stage in stages(DOCKERFILE)}
    for service in SERVICES:
        assert service in names, f"services/Dockerfile has no stage for {service}"


def test_the_target_checks_it_was_built_with_its_own_service(service, built):
    """A --target that does not match --build-arg SERVICE fails the build, not the container."""
    assert f'["{package_of(service)}", "--help"]' in built[-1].all("RUN")


def test_multi_stage_with_pinned_bases(built):
    assert len(built) >= 2
    names = {stage.name for stage in built if stage.name}
    for stage in built:
        if stage.base in names:
            continue
        assert "$" not in stage.base, f"unresolved base {stage.base}"
        assert PINNED.match(stage.base), f"{stage.base} is not pinned to an exact version"
        assert not stage.base.endswith(":latest")


def test_build_and_runtime_use_the_same_python(built):
    """The virtual environment's interpreter link must resolve in the runtime image."""
    runtime = built[-1]
    builders = [stage for stage in built if any("uv sync" in run for run in stage.all("RUN"))]
    assert builders
    assert {stage.base for stage in builders} == {runtime.base}


def test_uv_installs_only_this_service_from_the_lock(service, built):
    syncs = [run for stage in built for run in stage.all("RUN") if "uv sync" in run]
    assert syncs
    for sync in syncs:
        assert "--locked" in sync, sync
        assert "--no-dev" in sync, sync
        assert f"--package {package_of(service)}" in sync, sync
    assert any("--no-editable" in sync for sync in syncs), "the runtime must not need sources"


def test_every_workspace_manifest_is_copied_before_the_lock_is_checked(built):
    """uv sync --locked compares uv.lock with every member, so all manifests must be there."""
    copies = " ".join(copy for stage in built for copy in stage.all("COPY"))
    assert "uv.lock" in copies
    assert "pyproject.toml" in copies
    for member in workspace_members():
        assert f"{member.as_posix()}/pyproject.toml" in copies, f"{member} manifest not copied"


def test_runtime_runs_as_an_unprivileged_user(built):
    users = built[-1].all("USER")
    assert users, "the runtime stage sets no USER"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}
    assert not user.isdigit() or int(user) >= 1000


def test_runtime_copies_only_the_virtual_environment(built):
    runtime = built[-1]
    copies = runtime.all("COPY")
    assert copies
    assert all(copy.startswith("--from=") for copy in copies), copies


def test_entrypoint_is_the_console_script_and_port_is_exposed(service, built):
    runtime = built[-1]
    assert json.loads(runtime.all("ENTRYPOINT")[-1]) == [package_of(service)]
    if service in SERVICE_PORTS:
        assert runtime.all("EXPOSE") == [str(SERVICE_PORTS[service])]
        health = runtime.all("HEALTHCHECK")[-1]
        assert f"127.0.0.1:{SERVICE_PORTS[service]}/healthz" in health


def test_the_crawler_image_loops_by_default():
    runtime = image_of("crawler")[-1]
    assert json.loads(runtime.all("CMD")[-1])[:2] == ["run", "--every"]


def test_dockerignore_keeps_the_context_to_the_workspace():
    lines = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*", "allow-list: everything out, then the workspace back in"
    for needed in ("pyproject.toml", "uv.lock", "shared/", "services/"):
        assert f"!{needed}" in lines, needed
    assert "**/.venv/" in lines


def test_every_service_is_a_workspace_member_with_a_manifest():
    for member in service_dirs():
        assert Path(ROOT / member / "pyproject.toml").is_file(), member


@pytest.mark.slow
@pytest.mark.timeout(600)  # the first run downloads checkov into uv's cache
def test_checkov_reports_no_failed_check_on_the_dockerfiles():
    assert_checkov_clean("dockerfile", ROOT / "services")
