# The broker: Amazon MQ for RabbitMQ, a three-node cluster over the private subnets.
# Quorum queues (ingest.listings and its dead-letter queue) replicate over the three nodes.

resource "random_password" "mq" {
  length  = 32
  special = false # it travels inside an AMQP URL
}

resource "aws_security_group" "mq" {
  name        = "${local.name}-mq"
  description = "Amazon MQ broker: AMQPS from the Fragmenty tasks only"
  vpc_id      = aws_vpc.main.id
}

resource "aws_vpc_security_group_ingress_rule" "mq_from_tasks" {
  security_group_id            = aws_security_group.mq.id
  description                  = "AMQPS from the service and crawler tasks"
  referenced_security_group_id = aws_security_group.tasks.id
  ip_protocol                  = "tcp"
  from_port                    = 5671
  to_port                      = 5671
}

resource "aws_mq_broker" "main" {
  #checkov:skip=CKV_AWS_197:Amazon MQ for RabbitMQ has no audit log (ActiveMQ only); the general log is on
  #checkov:skip=CKV_AWS_209:Amazon MQ for RabbitMQ only encrypts with an AWS-owned key; encryption_options is ActiveMQ-only
  broker_name                = local.name
  engine_type                = "RabbitMQ"
  engine_version             = var.mq_engine_version
  host_instance_type         = var.mq_instance_type
  deployment_mode            = "CLUSTER_MULTI_AZ"
  publicly_accessible        = false
  subnet_ids                 = aws_subnet.private[*].id
  security_groups            = [aws_security_group.mq.id]
  auto_minor_version_upgrade = true

  logs {
    general = true
  }

  maintenance_window_start_time {
    day_of_week = "SUNDAY"
    time_of_day = "03:00"
    time_zone   = "UTC"
  }

  user {
    username = "fragmenty"
    password = random_password.mq.result
  }
}

locals {
  # amqps://host:5671 as Amazon MQ reports it, with the credentials put in.
  mq_endpoint = aws_mq_broker.main.instances[0].endpoints[0]
  rabbitmq_url = replace(
    local.mq_endpoint,
    "amqps://",
    "amqps://fragmenty:${random_password.mq.result}@",
  )
}
