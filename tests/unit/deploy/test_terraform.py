"""terraform/: parses, holds what the AWS deployment needs, documented, fmt-clean, checkov-clean."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.unit.deploy.checkov import assert_checkov_clean
from tests.unit.deploy.hcl import TerraformConfig, block, load
from tests.unit.deploy.repo import ROOT, TERRAFORM_DIR, TERRAFORM_TOOL

SKIP_COMMENT = re.compile(r"#checkov:skip=(?P<id>CKV2?_[A-Z]+_\d+):(?P<reason>.*)$")


@pytest.fixture(scope="module")
def tf() -> TerraformConfig:
    return load(TERRAFORM_DIR)


def test_every_file_parses(tf):
    assert set(tf.files) == {path.name for path in TERRAFORM_DIR.glob("*.tf")}
    assert len(tf.resources) > 50


def test_providers_pinned_aws_and_atlas(tf):
    terraform_block = tf.files["versions.tf"]["terraform"][0]
    providers = terraform_block["required_providers"][0]
    assert providers["aws"]["source"] == "hashicorp/aws"
    assert providers["mongodbatlas"]["source"] == "mongodb/mongodbatlas"
    for provider in providers.values():
        assert provider["version"].startswith("~>"), provider


def test_variables_and_outputs_are_documented(tf):
    assert tf.variables
    assert tf.outputs
    for name, variable in {**tf.variables, **tf.outputs}.items():
        assert len(variable.get("description", "")) > 10, f"{name} has no description"
    for name, variable in tf.variables.items():
        assert "type" in variable, f"variable {name} has no type"


def test_image_tag_is_a_required_git_commit(tf):
    image_tag = tf.variables["image_tag"]
    assert "default" not in image_tag
    condition = image_tag["validation"][0]["condition"]
    assert "[0-9a-f]{7,40}" in condition
    assert "${var.image_tag}" in json.dumps(tf.locals["containers"])


def test_vpc_with_public_and_private_subnets(tf):
    assert tf.of_type("aws_vpc")
    subnets = tf.of_type("aws_subnet")
    assert {"public", "private"} <= set(subnets)
    assert subnets["public"]["map_public_ip_on_launch"] is False
    assert tf.of_type("aws_nat_gateway")
    assert tf.of_type("aws_flow_log")


def test_ecr_repository_for_every_image(tf):
    repositories = tf.of_type("aws_ecr_repository")["service"]
    assert repositories["for_each"] == "${local.services}"
    assert 'toset(["api", "notifier", "ingest", "crawler", "alerts"])' in tf.locals["services"]
    assert repositories["image_tag_mutability"] == "IMMUTABLE"


def test_fargate_services_for_api_notifier_ingest_alerts(tf):
    assert set(tf.locals["long_running"]) == {"api", "notifier", "ingest", "alerts"}
    assert set(tf.locals["public_ports"]) == {"api", "notifier", "alerts"}
    services = tf.of_type("aws_ecs_service")
    assert services["public"]["for_each"] == "${local.public_ports}"
    assert services["ingest"]["desired_count"] == "${var.ingest_count}"
    for service in services.values():
        assert service["launch_type"] == "FARGATE"
        assert block(service, "network_configuration")["assign_public_ip"] is False
    # Autoscaling owns api and notifier's count; ingest's count is the variable's.
    assert block(services["public"], "lifecycle")["ignore_changes"] == ["desired_count"]
    assert "lifecycle" not in services["ingest"]
    assert tf.of_type("aws_ecs_cluster")


def test_api_notifier_and_alerts_autoscale(tf):
    assert set(tf.locals["autoscaled"]) == {"api", "notifier", "alerts"}
    assert tf.of_type("aws_appautoscaling_target")["service"]["for_each"] == "${local.autoscaled}"
    assert tf.of_type("aws_appautoscaling_policy")


def test_crawler_is_a_task_started_by_eventbridge_scheduler(tf):
    schedule = tf.of_type("aws_scheduler_schedule")["crawler"]
    target = block(schedule, "target")
    assert target["arn"] == "${aws_ecs_cluster.main.arn}"
    parameters = block(target, "ecs_parameters")
    assert parameters["task_definition_arn"] == "${aws_ecs_task_definition.crawler.arn}"
    assert "crawler" not in tf.locals["long_running"]
    assert '["run", "--once"]' in json.dumps(tf.locals["containers"]).replace('\\"', '"')


def test_https_load_balancer_with_certificate_and_dns(tf):
    https = tf.of_type("aws_lb_listener")["https"]
    assert https["protocol"] == "HTTPS"
    assert https["port"] == 443
    assert "aws_acm_certificate_validation" in https["certificate_arn"]
    http = tf.of_type("aws_lb_listener")["http"]
    assert block(http, "default_action")["type"] == "redirect"
    assert tf.of_type("aws_acm_certificate")["main"]["validation_method"] == "DNS"
    site = tf.of_type("aws_route53_record")["site"]
    assert "aws_lb.main" in block(site, "alias")["name"]


def test_websockets_route_to_the_notifier_and_may_idle(tf):
    rule = tf.of_type("aws_lb_listener_rule")["websockets"]
    paths = block(block(rule, "condition"), "path_pattern")["values"]
    assert set(paths) == {"/ws", "/ws/*"}
    assert 'service["notifier"]' in block(rule, "action")["target_group_arn"]
    assert tf.of_type("aws_lb")["main"]["idle_timeout"] == "${var.alb_idle_timeout_seconds}"
    assert tf.variables["alb_idle_timeout_seconds"]["default"] >= 600


def test_amazon_mq_rabbitmq_cluster(tf):
    broker = tf.of_type("aws_mq_broker")["main"]
    assert broker["engine_type"] == "RabbitMQ"
    assert broker["deployment_mode"] == "CLUSTER_MULTI_AZ"
    assert broker["publicly_accessible"] is False


def test_atlas_cluster_user_and_network_access_limited_to_the_vpc(tf):
    assert tf.of_type("mongodbatlas_advanced_cluster")
    user = tf.of_type("mongodbatlas_database_user")["services"]
    assert block(user, "roles")["role_name"] == "readWrite"
    access = tf.of_type("mongodbatlas_project_ip_access_list")
    assert [entry["cidr_block"] for entry in access.values()] == ["${var.vpc_cidr}"]
    assert tf.of_type("mongodbatlas_network_peering")


def test_connection_strings_are_secrets_not_environment(tf):
    secrets = tf.of_type("aws_secretsmanager_secret")
    assert {"rabbitmq_url", "mongodb_url"} <= set(secrets)
    for secret in secrets.values():
        assert secret["kms_key_id"] == "${aws_kms_key.main.arn}"
    environment = json.dumps(tf.locals["common_environment"])
    assert "RABBITMQ_URL" not in environment
    assert 'MONGODB_URL"' not in environment
    assert "aws_secretsmanager_secret.rabbitmq_url.arn" in json.dumps(tf.locals["common_secrets"])


def test_cloudwatch_log_group_per_service(tf):
    groups = tf.of_type("aws_cloudwatch_log_group")
    assert groups["service"]["for_each"] == "${local.services}"
    for group in groups.values():
        assert group["retention_in_days"] == "${var.log_retention_days}"


def skip_comments() -> list[tuple[str, int, str, str, str | None]]:
    """(file, line, check id, reason, enclosing resource) for each inline checkov skip."""
    found = []
    for path in sorted(TERRAFORM_DIR.glob("*.tf")):
        resource: str | None = None
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if line.startswith("resource "):
                resource = line
            elif line.startswith("}"):
                resource = None
            match = SKIP_COMMENT.search(line)
            if match:
                found.append((path.name, number, match["id"], match["reason"].strip(), resource))
    return found


def test_every_checkov_skip_is_inline_with_a_reason():
    skips = skip_comments()
    assert skips, "expected the documented skips (e.g. Amazon MQ's RabbitMQ has no audit log)"
    for file, number, check, reason, resource in skips:
        assert resource, f"{file}:{number} {check} is not inside a resource block"
        assert len(reason) >= 30, f"{file}:{number} {check} needs a real reason"


def terraform_env() -> dict[str, str]:
    env = dict(os.environ, CHECKPOINT_DISABLE="1")
    # A CLI configuration file that is named but missing only produces warnings.
    if not Path(env.get("TF_CLI_CONFIG_FILE", "/nonexistent")).is_file():
        env.pop("TF_CLI_CONFIG_FILE", None)
    return env


@pytest.mark.slow
@pytest.mark.timeout(900)  # the first run on a fresh machine builds terraform with go install
def test_terraform_fmt_style_is_kept():
    terraform = subprocess.run(
        [str(TERRAFORM_TOOL)], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout.strip()
    result = subprocess.run(
        [terraform, "fmt", "-check", "-diff", "-recursive", str(TERRAFORM_DIR)],
        capture_output=True,
        text=True,
        env=terraform_env(),
        check=False,
    )
    assert result.returncode == 0, f"terraform fmt would change:\n{result.stdout}{result.stderr}"


@pytest.mark.slow
@pytest.mark.timeout(600)  # the first run downloads checkov into uv's cache
def test_checkov_reports_no_failed_check():
    assert_checkov_clean("terraform", TERRAFORM_DIR)


REFERENCE = re.compile(
    r"(?<![\w.])(?:(?P<data>data)\.)?(?P<type>(?:aws|mongodbatlas|random)_[a-z0-9_]+)\.(?P<name>[a-z0-9_]+)\b"
)
SYMBOL = re.compile(r"(?<![\w.])(?P<kind>var|local)\.(?P<name>[a-z0-9_]+)\b")


def code_lines() -> list[tuple[str, str]]:
    """(file, line) of every .tf line, comments removed."""
    lines = []
    for path in sorted(TERRAFORM_DIR.glob("*.tf")):
        for line in path.read_text().splitlines():
            code = line.split("#", 1)[0] if not line.lstrip().startswith('"') else line
            lines.append((path.name, code))
    return lines


def test_every_reference_names_something_declared(tf):
    """What `terraform validate` would catch first, without the providers it needs."""
    undeclared = []
    for file, line in code_lines():
        for match in REFERENCE.finditer(line):
            key = (match["type"], match["name"])
            declared = tf.data if match["data"] else tf.resources
            if key not in declared:
                undeclared.append(f"{file}: {match[0]}")
        for match in SYMBOL.finditer(line):
            declared_symbols = tf.variables if match["kind"] == "var" else tf.locals
            if match["name"] not in declared_symbols:
                undeclared.append(f"{file}: {match[0]}")
    assert not undeclared, "undeclared references:\n" + "\n".join(undeclared)


def test_every_variable_and_local_is_used():
    text = "\n".join(line for _, line in code_lines())
    config = load(TERRAFORM_DIR)
    unused = [f"var.{name}" for name in config.variables if f"var.{name}" not in text]
    unused += [f"local.{name}" for name in config.locals if f"local.{name}" not in text]
    assert not unused, f"declared but never used: {unused}"


def test_the_services_behind_the_load_balancer_trust_its_forwarded_for(tf):
    settings = {
        service: {entry["name"]: entry["value"] for entry in entries}
        for service, entries in tf.locals["service_environment"].items()
    }
    assert settings["api"]["FORWARDED_ALLOW_IPS"] == "${var.vpc_cidr}"
    assert settings["notifier"]["FRAGMENTY_NOTIFIER_FORWARDED_ALLOW_IPS"] == "${var.vpc_cidr}"
    assert "local.service_environment" in json.dumps(tf.locals["containers"])


def test_the_pages_subscribe_to_the_notifier_behind_the_same_name(tf):
    api = {e["name"]: e["value"] for e in tf.locals["service_environment"]["api"]}
    assert api["FRAGMENTY_NOTIFIER_PUBLIC_URL"] == "wss://${var.domain_name}/ws"


def test_the_alerts_bot_token_is_a_secret_and_the_alerts_api_is_routed(tf):
    secrets = tf.locals["service_secrets"]
    assert "aws_secretsmanager_secret.telegram_bot_token.arn" in str(secrets)
    assert tf.of_type("aws_secretsmanager_secret")["telegram_bot_token"]
    rule = tf.of_type("aws_lb_listener_rule")["alerts"]
    assert "/api/v1/alerts/*" in str(rule)
