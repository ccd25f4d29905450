"""Prometheus scrape configuration and Grafana provisioning, checked without running them."""

from __future__ import annotations

import copy
import inspect
import json
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from fragmenty_shared.metrics import new_registry
from tests.unit.deploy.repo import (
    COMPOSE_FILE,
    DASHBOARD,
    GRAFANA_PROVISIONING,
    PROMETHEUS_COMPOSE,
    PROMETHEUS_LOCAL,
    SERVICE_PORTS,
    dashboard_queries,
    exported_series,
    load_yaml,
    metrics_queried,
)


def targets_by_job(config: dict[str, Any]) -> dict[str, list[str]]:
    return {
        job["job_name"]: [t for static in job["static_configs"] for t in static["targets"]]
        for job in config["scrape_configs"]
    }


def without_targets(config: dict[str, Any]) -> dict[str, Any]:
    stripped = copy.deepcopy(config)
    for job in stripped["scrape_configs"]:
        for static in job["static_configs"]:
            static.pop("targets")
    return stripped


def test_prometheus_scrapes_every_service_in_compose():
    targets = targets_by_job(load_yaml(PROMETHEUS_COMPOSE))
    services = load_yaml(COMPOSE_FILE)["services"]
    assert targets == {name: [f"{name}:{port}"] for name, port in SERVICE_PORTS.items()}
    assert set(targets) <= set(services)


def test_prometheus_scrapes_every_service_of_make_up():
    targets = targets_by_job(load_yaml(PROMETHEUS_LOCAL))
    assert targets == {name: [f"127.0.0.1:{port}"] for name, port in SERVICE_PORTS.items()}


def test_the_two_scrape_configurations_differ_only_in_targets():
    assert without_targets(load_yaml(PROMETHEUS_COMPOSE)) == without_targets(
        load_yaml(PROMETHEUS_LOCAL)
    )


def test_grafana_data_source_is_the_compose_prometheus():
    datasources = load_yaml(GRAFANA_PROVISIONING / "datasources" / "prometheus.yml")["datasources"]
    assert len(datasources) == 1
    source = datasources[0]
    assert source["type"] == "prometheus"
    assert source["url"] == "http://prometheus:9090"
    assert source["isDefault"] is True


def test_grafana_loads_the_dashboard_folder_compose_mounts():
    provider = load_yaml(GRAFANA_PROVISIONING / "dashboards" / "fragmenty.yml")["providers"][0]
    grafana = load_yaml(COMPOSE_FILE)["services"]["grafana"]
    mounted = {
        v.split(":")[1] for v in grafana["volumes"] if v.startswith("./deploy/grafana/dashboards")
    }
    assert mounted == {provider["options"]["path"]}


def test_dashboard_panels_use_the_provisioned_data_source():
    dashboard = json.loads(DASHBOARD.read_text())
    uid = load_yaml(GRAFANA_PROVISIONING / "datasources" / "prometheus.yml")["datasources"][0][
        "uid"
    ]
    assert dashboard["uid"]
    assert dashboard["panels"]
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == uid, panel["title"]
        assert panel["targets"], f"{panel['title']} has no query"
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == uid


@pytest.mark.parametrize(
    "topic",
    [
        "census completeness",
        "census duration",
        "rows per view",
        "ingest rate",
        "ingest lag",
        "events by type",
        "dead letters",
        "websocket connections",
        "fan-out latency",
        "api latency by route",
    ],
)
def test_dashboard_has_a_panel_for(topic):
    titles = {title.lower() for title, _ in dashboard_queries()}
    assert topic in titles


def test_every_panel_queries_a_fragmenty_metric():
    for title, expr in dashboard_queries():
        assert "fragmenty_" in expr, f"{title}: {expr}"


def registries_of_the_services() -> dict[str, CollectorRegistry]:
    """Each service's metrics, made by the factories in its own metrics.py (a fresh registry)."""
    from fragmenty_alerts import metrics as alerts_metrics
    from fragmenty_api import metrics as api_metrics
    from fragmenty_crawler import metrics as crawler_metrics
    from fragmenty_ingest import metrics as ingest_metrics
    from fragmenty_notifier import metrics as notifier_metrics

    modules = {
        "alerts": alerts_metrics,
        "api": api_metrics,
        "crawler": crawler_metrics,
        "ingest": ingest_metrics,
        "notifier": notifier_metrics,
    }
    registries = {}
    for service, module in modules.items():
        registry = new_registry(service)
        for name, factory in vars(module).items():
            if not callable(factory) or getattr(factory, "__module__", None) != module.__name__:
                continue
            if not (name.endswith("Metrics") or name == "create_metrics"):
                continue
            parameters = inspect.signature(factory).parameters
            required = [
                p.name
                for p in parameters.values()
                if p.default is p.empty
                and p.kind is not p.VAR_KEYWORD
                and p.kind is not p.VAR_POSITIONAL
            ]
            if set(required) - {"registry"}:
                continue  # a plain holder (e.g. a dataclass of metrics), not a factory
            made = factory(registry=registry) if "registry" in parameters else factory()
            made_registry = getattr(made, "registry", registry)
            registries[f"{service}.{name}"] = made_registry
    return registries


def test_every_metric_the_dashboard_names_is_defined_by_a_service():
    registries = registries_of_the_services()
    assert {key.split(".")[0] for key in registries} == set(SERVICE_PORTS)
    exported: set[str] = set()
    for registry in registries.values():
        exported |= exported_series(generate_latest(registry).decode())
    missing = {name: panels for name, panels in metrics_queried().items() if name not in exported}
    assert not missing, f"the dashboard or the alerts query metrics no service defines: {missing}"
