data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

# The zones are named, not discovered: a zone AWS adds later must not move subnets around.
data "aws_availability_zones" "selected" {
  state = "available"

  filter {
    name   = "zone-name"
    values = local.wanted_azs
  }

  lifecycle {
    postcondition {
      condition     = length(self.names) == length(local.wanted_azs)
      error_message = "Some of the availability zones ${join(", ", local.wanted_azs)} do not exist or are not available in ${var.aws_region}: set availability_zones."
    }
  }
}

locals {
  name       = "fragmenty-${var.environment}"
  account_id = data.aws_caller_identity.current.account_id
  wanted_azs = length(var.availability_zones) > 0 ? var.availability_zones : [for letter in ["a", "b", "c"] : "${var.aws_region}${letter}"]
  az_count   = length(local.wanted_azs)
  azs        = data.aws_availability_zones.selected.names

  # Every image built from this repository; each gets an ECR repository and a log group.
  services = toset(["api", "notifier", "ingest", "crawler", "alerts"])

  # The long-running ones: a Fargate service each. The crawler runs as a scheduled task instead.
  long_running = {
    api      = { port = 8000 }
    notifier = { port = 8001 }
    ingest   = { port = 8002 }
    alerts   = { port = 8004 }
  }

  # The ones users reach through the load balancer.
  public_ports = {
    api      = local.long_running.api.port
    notifier = local.long_running.notifier.port
    alerts   = local.long_running.alerts.port
  }

  # Atlas names AWS regions its own way (eu-west-1 -> EU_WEST_1).
  atlas_region = upper(replace(var.aws_region, "-", "_"))

  # Settings every container gets (fragmenty_shared.settings.Settings reads FRAGMENTY_*).
  common_environment = [
    { name = "FRAGMENTY_HOST", value = "0.0.0.0" },
    { name = "FRAGMENTY_MONGODB_DATABASE", value = var.mongodb_database },
    { name = "FRAGMENTY_LOG_JSON", value = "true" },
    { name = "FRAGMENTY_LOG_LEVEL", value = var.log_level },
    { name = "FRAGMENTY_FRAGMENT_URL", value = var.fragment_url },
  ]

  # Settings of one service. The load balancer reports the client's address in X-Forwarded-For;
  # only it can reach the tasks (security_groups.tf), so its addresses, anywhere in the VPC, are
  # trusted to say so (the api's uvicorn reads FORWARDED_ALLOW_IPS; the notifier has its own).
  # The api's pages open their WebSocket where browsers reach the notifier: behind the same name.
  service_environment = {
    api = [
      { name = "FORWARDED_ALLOW_IPS", value = var.vpc_cidr },
      { name = "FRAGMENTY_NOTIFIER_PUBLIC_URL", value = "wss://${var.domain_name}/ws" },
    ]
    notifier = [{ name = "FRAGMENTY_NOTIFIER_FORWARDED_ALLOW_IPS", value = var.vpc_cidr }]
    # Links in alert messages point at the public pages.
    alerts = [{ name = "FRAGMENTY_ALERTS_PUBLIC_URL", value = "https://${var.domain_name}" }]
  }

  # Secrets of one service, on top of the connection strings.
  service_secrets = {
    alerts = [
      { name = "FRAGMENTY_ALERTS_TELEGRAM_TOKEN", valueFrom = aws_secretsmanager_secret.telegram_bot_token.arn },
    ]
  }

  # Connection strings carry credentials, so they come from Secrets Manager, not the environment.
  common_secrets = [
    { name = "FRAGMENTY_RABBITMQ_URL", valueFrom = aws_secretsmanager_secret.rabbitmq_url.arn },
    { name = "FRAGMENTY_MONGODB_URL", valueFrom = aws_secretsmanager_secret.mongodb_url.arn },
  ]
}
