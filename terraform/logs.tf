# One log group per service; the services write JSON lines (FRAGMENTY_LOG_JSON=true).
resource "aws_cloudwatch_log_group" "service" {
  for_each = local.services

  name              = "/fragmenty/${var.environment}/${each.key}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.main.arn
}

# Commands run in containers with ECS Exec are recorded here.
resource "aws_cloudwatch_log_group" "ecs_exec" {
  name              = "/fragmenty/${var.environment}/ecs-exec"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.main.arn
}
