# The ECS cluster: Fargate services for api, notifier, ingest and alerts, and the crawler's task
# definition (EventBridge Scheduler runs it, see scheduler.tf).

resource "aws_ecs_cluster" "main" {
  name = local.name

  setting {
    name  = "containerInsights"
    value = "enabled"
  }

  configuration {
    execute_command_configuration {
      kms_key_id = aws_kms_key.main.arn
      logging    = "OVERRIDE"

      log_configuration {
        cloud_watch_encryption_enabled = true
        cloud_watch_log_group_name     = aws_cloudwatch_log_group.ecs_exec.name
      }
    }
  }
}

resource "aws_ecs_cluster_capacity_providers" "main" {
  cluster_name       = aws_ecs_cluster.main.name
  capacity_providers = ["FARGATE"]

  default_capacity_provider_strategy {
    capacity_provider = "FARGATE"
    weight            = 1
  }
}

locals {
  # One container definition per image; the ports and the crawler's command are what differ.
  containers = {
    for name in local.services : name => merge(
      {
        name                   = name
        image                  = "${aws_ecr_repository.service[name].repository_url}:${var.image_tag}"
        essential              = true
        user                   = "10001:10001" # the images' unprivileged user
        readonlyRootFilesystem = true
        environment            = concat(local.common_environment, lookup(local.service_environment, name, []))
        secrets                = concat(local.common_secrets, lookup(local.service_secrets, name, []))
        # The root filesystem is read-only; /tmp is a small scratch volume.
        mountPoints = [{ sourceVolume = "tmp", containerPath = "/tmp", readOnly = false }]
        logConfiguration = {
          logDriver = "awslogs"
          options = {
            awslogs-group         = aws_cloudwatch_log_group.service[name].name
            awslogs-region        = var.aws_region
            awslogs-stream-prefix = name
          }
        }
      },
      name == "crawler" ? {
        # One complete census per scheduled run, then the task exits.
        command = ["run", "--once"]
        } : {
        portMappings = [{ containerPort = local.long_running[name].port, protocol = "tcp" }]
        healthCheck = {
          command     = ["CMD", "python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:${local.long_running[name].port}/healthz', timeout=4)"]
          interval    = 30
          timeout     = 5
          retries     = 3
          startPeriod = 30
        }
      },
    )
  }
}

resource "aws_ecs_task_definition" "service" {
  for_each = local.long_running

  family                   = "${local.name}-${each.key}"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.task_size[each.key].cpu
  memory                   = var.task_size[each.key].memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.task.arn
  container_definitions    = jsonencode([local.containers[each.key]])

  volume {
    name = "tmp"
  }

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }
}

resource "aws_ecs_task_definition" "crawler" {
  family                   = "${local.name}-crawler"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.task_size["crawler"].cpu
  memory                   = var.task_size["crawler"].memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.task.arn
  container_definitions    = jsonencode([local.containers["crawler"]])

  volume {
    name = "tmp"
  }

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }
}

# api, notifier and alerts: behind the load balancer, their task count owned by autoscaling.
# Alerts tasks compete for one durable queue and keep shared state in MongoDB (docs/alerts.md).
resource "aws_ecs_service" "public" {
  for_each = local.public_ports

  name                              = each.key
  cluster                           = aws_ecs_cluster.main.id
  task_definition                   = aws_ecs_task_definition.service[each.key].arn
  desired_count                     = local.autoscaled[each.key].min
  launch_type                       = "FARGATE"
  platform_version                  = "LATEST"
  enable_execute_command            = true
  propagate_tags                    = "SERVICE"
  health_check_grace_period_seconds = 60 # time to connect to the broker and database first

  network_configuration {
    subnets          = aws_subnet.private[*].id
    security_groups  = [aws_security_group.tasks.id]
    assign_public_ip = false
  }

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  load_balancer {
    target_group_arn = aws_lb_target_group.service[each.key].arn
    container_name   = each.key
    container_port   = each.value
  }

  lifecycle {
    # Autoscaling owns the running count; an apply must not reset it to the minimum.
    ignore_changes = [desired_count]
  }

  depends_on = [aws_lb_listener.https, aws_iam_role_policy.execution]
}

# ingest: a fixed count; one task consumes (single active consumer), the others stand by.
resource "aws_ecs_service" "ingest" {
  name                   = "ingest"
  cluster                = aws_ecs_cluster.main.id
  task_definition        = aws_ecs_task_definition.service["ingest"].arn
  desired_count          = var.ingest_count
  launch_type            = "FARGATE"
  platform_version       = "LATEST"
  enable_execute_command = true
  propagate_tags         = "SERVICE"

  network_configuration {
    subnets          = aws_subnet.private[*].id
    security_groups  = [aws_security_group.tasks.id]
    assign_public_ip = false
  }

  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  depends_on = [aws_iam_role_policy.execution]
}
