"""The build stage of each service's image, replayed without Docker (there is no engine here).

Its COPY and `uv sync` steps run as written, in a scratch directory standing in for the image's
filesystem: what the first sync sees is only what the Dockerfile copied before it. The virtual
environment that comes out must run the service's console script from outside the repository,
hold the service and fragmenty_shared as installed packages (not links to the sources), and
hold neither the dev tools nor the other services.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.unit.deploy.dockerfile import Instruction, image_stages
from tests.unit.deploy.repo import ROOT, service_dirs

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

SERVICES = [path.name for path in service_dirs()]
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".venv", ".mypy_cache", ".ruff_cache")


class ImageFilesystem:
    """Absolute paths of the image, mapped under a scratch directory."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.workdir = root

    def path(self, image_path: str) -> Path:
        if image_path.startswith("/"):
            return self.root / image_path.lstrip("/")
        return self.workdir / image_path


def env_pairs(arguments: str) -> dict[str, str]:
    return dict(word.split("=", 1) for word in shlex.split(arguments))


def replay_build_stage(service: str, image: ImageFilesystem) -> dict[str, str]:
    built = image_stages(ROOT / "services" / "Dockerfile", service, {"SERVICE": service})
    builders = [s for s in built if any("uv sync" in r for r in s.all("RUN"))]
    assert len(builders) == 1, "expected one build stage running uv sync"
    env = dict(os.environ)
    env.pop("VIRTUAL_ENV", None)
    for instruction in builders[0].instructions:
        replay(instruction, image, env)
    return env


def replay(instruction: Instruction, image: ImageFilesystem, env: dict[str, str]) -> None:
    keyword, arguments = instruction.keyword, instruction.arguments
    if keyword == "ENV":
        for name, value in env_pairs(arguments).items():
            env[name] = str(image.path(value)) if value.startswith("/") else value
    elif keyword == "WORKDIR":
        image.workdir = image.path(arguments)
        image.workdir.mkdir(parents=True, exist_ok=True)
    elif keyword == "COPY":
        if arguments.startswith("--from="):
            return  # the uv binary: the one on this machine stands in for it
        *sources, destination = shlex.split(arguments)
        target = image.path(destination)
        for source in sources:
            origin = ROOT / source
            if origin.is_dir():
                shutil.copytree(origin, target, ignore=IGNORED, dirs_exist_ok=True)
            else:
                target.mkdir(parents=True, exist_ok=True)
                shutil.copy2(origin, target / origin.name)
    elif keyword == "RUN":
        words = [w for w in shlex.split(arguments) if not w.startswith("--mount=")]
        assert words[:2] == ["uv", "sync"], f"unexpected RUN {arguments}"
        words[0] = shutil.which("uv") or "uv"
        result = subprocess.run(
            words, cwd=image.workdir, env=env, capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, f"{arguments}\n{result.stdout}{result.stderr}"


@pytest.mark.parametrize("service", SERVICES)
def test_build_stage_makes_a_self_contained_environment(service: str, tmp_path: Path) -> None:
    image = ImageFilesystem(tmp_path / "image")
    env = replay_build_stage(service, image)
    venv = Path(env["UV_PROJECT_ENVIRONMENT"])
    python = venv / "bin" / "python"
    assert (venv / "bin" / f"fragmenty-{service}").is_file()

    # The runtime stage has no sources: run from elsewhere, with the sources moved away.
    shutil.rmtree(image.path("/src"))
    outside = tmp_path / "elsewhere"
    outside.mkdir()

    def run(code: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(python), "-c", code],
            cwd=outside,
            env={"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(outside)},
            capture_output=True,
            text=True,
            check=False,
        )

    module = f"fragmenty_{service}"
    imported = run(f"import {module}, fragmenty_shared; print({module}.__file__)")
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.strip().startswith(str(venv)), "installed, not linked to the sources"
    for absent in ["pytest", "mypy", *(f"fragmenty_{s}" for s in SERVICES if s != service)]:
        assert run(f"import {absent}").returncode != 0, f"{absent} should not be in the image"
    # The console script's target imports (loading it runs nothing: no server starts).
    script = f"fragmenty-{service}"
    loaded = run(
        "from importlib.metadata import entry_points; "
        f"print(entry_points(group='console_scripts')['{script}'].load())"
    )
    assert loaded.returncode == 0, loaded.stderr
