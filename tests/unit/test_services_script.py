"""scripts/services.py's pieces that need no services: Procfile parsing, the exec form of a
command, and naming the process that holds a port."""

from __future__ import annotations

import importlib.util
import os
import socket
import sys
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "services.py"


@pytest.fixture(scope="module")
def services() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fragmenty_services_script", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_procfile_entries_skip_blanks_and_comments(services: ModuleType, tmp_path: Path) -> None:
    procfile = tmp_path / "Procfile"
    procfile.write_text("# comment\n\napi: uv run fragmenty-api\ncrawler: A=1 uv run x --every 5\n")
    entries = services.read_procfile(procfile)
    assert [(e.name, e.command) for e in entries] == [
        ("api", "uv run fragmenty-api"),
        ("crawler", "A=1 uv run x --every 5"),
    ]


def test_the_shell_execs_the_service_after_its_assignments(services: ModuleType) -> None:
    assert services._exec_form("uv run fragmenty-api") == "exec uv run fragmenty-api"
    assert services._exec_form("A=1 B='[\"x\"]' uv run y --z 1") == (
        "A=1 B='[\"x\"]' exec uv run y --z 1"
    )


def test_a_taken_port_names_the_process_that_holds_it(services: ModuleType) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        port = listener.getsockname()[1]
        assert services.describe_port(port) is None  # bound, not listening yet
        listener.listen()
        taken = services.describe_port(port)
        assert taken is not None
        assert taken.startswith(f"port {port} is taken by pid {os.getpid()}: ")
        assert "python" in taken
    assert services.describe_port(port) is None


def test_ports_follow_the_environment(
    services: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FRAGMENTY_API_PORT", "18123")
    assert services.Entry("api", "uv run fragmenty-api").port() == 18123
    monkeypatch.delenv("FRAGMENTY_NOTIFIER_PORT", raising=False)
    assert services.Entry("notifier", "x").port() == 8001
    assert services.Entry("something-else", "x").port() is None
