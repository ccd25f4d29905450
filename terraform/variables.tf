# Every input of the deployment. Required ones have no default; terraform.tfvars.example shows them.

# --- Where and what ---------------------------------------------------------------------------

variable "aws_region" {
  description = "AWS region for every AWS resource (and the Atlas cluster, which is placed in the same region)."
  type        = string
  default     = "eu-west-1"
}

variable "environment" {
  description = "Short environment name, part of every resource name (e.g. prod, staging)."
  type        = string
  default     = "prod"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,15}$", var.environment))
    error_message = "environment: 2-16 lowercase letters, digits or dashes, starting with a letter."
  }
}

variable "image_tag" {
  description = "Tag of every service image in ECR: the git commit the images were built from (`git rev-parse --short=12 HEAD`, as deploy/push-images.sh prints it)."
  type        = string

  validation {
    condition     = can(regex("^[0-9a-f]{7,40}$", var.image_tag))
    error_message = "image_tag must be a git commit hash (7 to 40 lowercase hex digits)."
  }
}

variable "tags" {
  description = "Extra tags added to every AWS resource."
  type        = map(string)
  default     = {}
}

# --- DNS and TLS ------------------------------------------------------------------------------

variable "route53_zone_name" {
  description = "Existing public Route 53 hosted zone that holds the site's name (e.g. example.com)."
  type        = string
}

variable "domain_name" {
  description = "Name users open (e.g. fragmenty.example.com), inside route53_zone_name. ACM issues its certificate, validated by DNS."
  type        = string
}

# --- Network ----------------------------------------------------------------------------------

variable "vpc_cidr" {
  description = "CIDR block of the VPC. Must not overlap atlas_cidr_block (the two are peered)."
  type        = string
  default     = "10.40.0.0/16"
}

variable "availability_zones" {
  description = "Availability zones used, one public and one private subnet in each (empty: <region>a, b and c). Amazon MQ's cluster deployment spreads its three nodes over them."
  type        = list(string)
  default     = []

  validation {
    condition     = length(var.availability_zones) == 0 || (length(var.availability_zones) >= 2 && length(var.availability_zones) <= 3)
    error_message = "availability_zones: two or three zones (the load balancer needs two), or empty for <region>a, b and c."
  }
}

variable "nat_gateway_per_az" {
  description = "One NAT gateway per zone (survives a zone outage) instead of a single shared one (cheaper)."
  type        = bool
  default     = false
}

# --- Load balancer ----------------------------------------------------------------------------

variable "alb_idle_timeout_seconds" {
  description = "Seconds an idle connection stays open at the load balancer. WebSocket clients of the notifier stay connected between events, so this is far above the 60 s default (the notifier's WebSocket pings also count as traffic)."
  type        = number
  default     = 3600

  validation {
    condition     = var.alb_idle_timeout_seconds >= 60 && var.alb_idle_timeout_seconds <= 4000
    error_message = "alb_idle_timeout_seconds must be between 60 and 4000 (the ALB maximum)."
  }
}

variable "alb_deletion_protection" {
  description = "Protect the load balancer from deletion. Set to false (and apply) before `terraform destroy`."
  type        = bool
  default     = true
}

# --- Services ---------------------------------------------------------------------------------

variable "api_scaling" {
  description = "Task count range of the api (stateless, scaled on CPU and requests per task)."
  type = object({
    min = number
    max = number
  })
  default = { min = 2, max = 10 }
}

variable "notifier_scaling" {
  description = "Task count range of the notifier (each task binds its own queue and sees every event; scaled on CPU)."
  type = object({
    min = number
    max = number
  })
  default = { min = 2, max = 10 }
}

variable "alerts_scaling" {
  description = "Task count range of the alerts service (its tasks compete for one durable queue; scaled on CPU)."
  type = object({
    min = number
    max = number
  })
  default = { min = 2, max = 6 }
}

variable "telegram_bot_token" {
  description = "Token of the alerts service's Telegram bot (from @BotFather); empty leaves the bot off. Stored in Secrets Manager."
  type        = string
  default     = ""
  sensitive   = true
}

variable "ingest_count" {
  description = "Ingest tasks. The ingest queue has a single active consumer, so one task works and the others stand by to take over at once."
  type        = number
  default     = 2
}

variable "task_size" {
  description = "Fargate CPU units and memory (MiB) per service task."
  type = map(object({
    cpu    = number
    memory = number
  }))
  default = {
    api      = { cpu = 512, memory = 1024 }
    notifier = { cpu = 512, memory = 1024 }
    ingest   = { cpu = 512, memory = 1024 }
    crawler  = { cpu = 512, memory = 1024 }
    alerts   = { cpu = 512, memory = 1024 }
  }
}

variable "crawl_schedule_expression" {
  description = "When EventBridge Scheduler starts a crawler task (one complete census per run)."
  type        = string
  default     = "rate(10 minutes)"
}

variable "fragment_url" {
  description = "Base URL the crawler reads."
  type        = string
  default     = "https://fragment.com"
}

variable "log_level" {
  description = "Lowest log level the services write (DEBUG, INFO, WARNING or ERROR)."
  type        = string
  default     = "INFO"
}

variable "log_retention_days" {
  description = "Days CloudWatch keeps service, VPC flow and WAF logs."
  type        = number
  default     = 365
}

# --- Broker: Amazon MQ for RabbitMQ -----------------------------------------------------------

variable "mq_instance_type" {
  description = "Amazon MQ broker instance type (a cluster deployment needs mq.m5.large or larger)."
  type        = string
  default     = "mq.m5.large"
}

variable "mq_engine_version" {
  description = "RabbitMQ engine version on Amazon MQ (quorum queues with delivery limits need 3.13)."
  type        = string
  default     = "3.13"
}

# --- Database: MongoDB Atlas ------------------------------------------------------------------

variable "atlas_org_id" {
  description = "MongoDB Atlas organization in which the project is created."
  type        = string
}

variable "atlas_instance_size" {
  description = "Atlas cluster tier. VPC peering needs a dedicated tier (M10 or larger)."
  type        = string
  default     = "M10"
}

variable "atlas_cidr_block" {
  description = "CIDR of Atlas' own VPC in this region (peered with ours). Must not overlap vpc_cidr."
  type        = string
  default     = "192.168.248.0/21"
}

variable "mongodb_database" {
  description = "Database that holds listings, history, events and rollups."
  type        = string
  default     = "fragmenty"
}
