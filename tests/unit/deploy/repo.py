"""Paths and small readers shared by the deployment tests (unit and integration)."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[3]
COMPOSE_FILE = ROOT / "compose.yaml"
DEPLOY_DIR = ROOT / "deploy"
TERRAFORM_DIR = ROOT / "terraform"
PROMETHEUS_COMPOSE = DEPLOY_DIR / "prometheus" / "prometheus.yml"
PROMETHEUS_LOCAL = DEPLOY_DIR / "prometheus" / "prometheus.local.yml"
PROMETHEUS_ALERTS = DEPLOY_DIR / "prometheus" / "alerts.yml"
PROMETHEUS_ALERT_TESTS = DEPLOY_DIR / "prometheus" / "alerts.test.yml"
DASHBOARD = DEPLOY_DIR / "grafana" / "dashboards" / "fragmenty.json"
GRAFANA_PROVISIONING = DEPLOY_DIR / "grafana" / "provisioning"
TERRAFORM_TOOL = DEPLOY_DIR / "tools" / "terraform.sh"

# The four services `make up` runs, with the default port of their HTTP endpoints.
SERVICE_PORTS = {"api": 8000, "notifier": 8001, "ingest": 8002, "crawler": 8003, "alerts": 8004}

METRIC_IN_QUERY = re.compile(r"\bfragmenty_[a-z0-9_]+\b")


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def workspace_members() -> list[Path]:
    """Directories of the uv workspace members (relative to the root), from pyproject.toml."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    members: list[Path] = []
    for pattern in pyproject["tool"]["uv"]["workspace"]["members"]:
        members.extend(
            path.relative_to(ROOT)
            for path in sorted(ROOT.glob(pattern))
            if (path / "pyproject.toml").is_file()
        )
    return members


def service_dirs() -> list[Path]:
    """Every workspace member under services/ (each ships a Dockerfile)."""
    return [member for member in workspace_members() if member.parts[0] == "services"]


def exported_series(exposition: str) -> set[str]:
    """Names of every series a /metrics answer (Prometheus text format) can carry.

    Read from the ``# TYPE`` lines, so a labelled metric that has not been observed yet still
    counts; histograms and summaries add their ``_bucket``/``_sum``/``_count`` series.
    """
    suffixes = {"histogram": ("_bucket", "_sum", "_count"), "summary": ("_sum", "_count")}
    names: set[str] = set()
    for line in exposition.splitlines():
        if not line.startswith("# TYPE "):
            continue
        _, _, name, kind = line.split(maxsplit=3)
        names.add(name)
        names.update(name + suffix for suffix in suffixes.get(kind.strip(), ()))
    return names


def dashboard_queries() -> list[tuple[str, str]]:
    """(panel title, PromQL expression) for every query of the shipped dashboard."""

    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return [
        (panel["title"], target["expr"])
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
    ]


def alert_queries() -> list[tuple[str, str]]:
    """(alert name, PromQL expression) for every shipped alerting rule."""
    groups = load_yaml(PROMETHEUS_ALERTS)["groups"]
    return [(rule["alert"], rule["expr"]) for group in groups for rule in group["rules"]]


def metrics_queried() -> dict[str, set[str]]:
    """Each fragmenty_* metric the dashboard and the alerts query, with who uses it."""
    used: dict[str, set[str]] = {}
    for title, expr in dashboard_queries() + alert_queries():
        for name in METRIC_IN_QUERY.findall(expr):
            used.setdefault(name, set()).add(title)
    return used
