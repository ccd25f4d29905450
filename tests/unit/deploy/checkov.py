"""checkov, run isolated from the workspace (uv tool run) and pinned.

A new checkov release brings new checks; pinning means they never break main unannounced:
raise the pin on purpose and fix (or skip inline, with a reason) what it reports.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from tests.unit.deploy.repo import ROOT

CHECKOV = "checkov@3.3.30"


def run_checkov(framework: str, directory: Path) -> dict[str, Any]:
    uv = shutil.which("uv")
    assert uv, "uv is needed to run checkov isolated"
    result = subprocess.run(
        [
            uv,
            "tool",
            "run",
            CHECKOV,
            "--directory",
            str(directory),
            "--framework",
            framework,
            "--output",
            "json",
            "--skip-download",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        env=dict(os.environ, BC_SKIP_MAPPING="TRUE"),
    )
    assert result.stdout, f"checkov printed nothing:\n{result.stderr[-3000:]}"
    report = json.loads(result.stdout)
    found: dict[str, Any] = report if isinstance(report, dict) else report[0]
    return found


def assert_checkov_clean(framework: str, directory: Path) -> None:
    report = run_checkov(framework, directory)
    summary = report["summary"]
    failed = report.get("results", {}).get("failed_checks", [])
    described = [f"{c['check_id']} {c['resource']} ({c['file_path']})" for c in failed]
    assert summary["failed"] == 0, "checkov failed:\n" + "\n".join(described)
    assert summary["parsing_errors"] == 0
    assert summary["passed"] > 100, "checkov checked (almost) nothing"
