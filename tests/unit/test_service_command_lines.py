"""``--help`` on a service explains its configuration and exits; it never starts the service."""

import subprocess
import sys

import pytest


@pytest.mark.parametrize("service", ["ingest", "api", "notifier", "alerts"])
def test_help_explains_and_exits_without_starting(service: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", f"fragmenty_{service}", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert f"fragmenty-{service}" in result.stdout
    assert "FRAGMENTY_" in result.stdout


def test_unknown_arguments_are_refused() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "fragmenty_api", "--port", "9"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "unrecognized arguments" in result.stderr


@pytest.mark.parametrize("command", ["migrate", "dead-letters", "dead-letters replay"])
def test_ingest_tools_explain_themselves_without_starting_anything(command: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "fragmenty_ingest", *command.split(), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert f"fragmenty-ingest {command}" in result.stdout
