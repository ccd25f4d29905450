"""Each service's Dockerfile: multi-stage uv build from the workspace, pinned bases, non-root."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.unit.deploy.checkov import assert_checkov_clean
from tests.unit.deploy.dockerfile import Stage, stages
from tests.unit.deploy.repo import ROOT, SERVICE_PORTS, service_dirs, workspace_members

PINNED = re.compile(r"^[\w./-]+:v?\d+\.\d+(\.\d+)?[\w.-]*(@sha256:[0-9a-f]{64})?$")
SERVICES = [path.name for path in service_dirs()]


def package_of(service: str) -> str:
    return f"fragmenty-{service}"


@pytest.fixture(params=SERVICES)
def service(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def built(service: str) -> list[Stage]:
    dockerfile = ROOT / "services" / service / "Dockerfile"
    assert dockerfile.is_file(), f"services/{service} has no Dockerfile"
    return stages(dockerfile)


def test_every_service_has_a_dockerfile():
    assert set(SERVICE_PORTS) <= set(SERVICES)
    for service in SERVICES:
        assert (ROOT / "services" / service / "Dockerfile").is_file(), service


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
    runtime = stages(ROOT / "services/crawler/Dockerfile")[-1]
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


def test_a_dockerfile_sits_next_to_each_service_manifest():
    for member in service_dirs():
        assert (ROOT / member / "Dockerfile").is_file(), member
        assert Path(ROOT / member / "pyproject.toml").is_file()


@pytest.mark.slow
@pytest.mark.timeout(600)  # the first run downloads checkov into uv's cache
def test_checkov_reports_no_failed_check_on_the_dockerfiles():
    assert_checkov_clean("dockerfile", ROOT / "services")
