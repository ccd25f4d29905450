output "url" {
  description = "Where the site answers (REST API and chart pages)."
  value       = "https://${var.domain_name}"
}

output "websocket_url" {
  description = "The notifier's WebSocket endpoint (add /<asset> etc. as docs/notifier describes)."
  value       = "wss://${var.domain_name}/ws"
}

output "load_balancer_dns_name" {
  description = "The load balancer's own name (domain_name is an alias of it)."
  value       = aws_lb.main.dns_name
}

output "ecr_repository_urls" {
  description = "Where deploy/push-images.sh pushes each service image, tagged with the git commit."
  value       = { for name, repository in aws_ecr_repository.service : name => repository.repository_url }
}

output "image_tag" {
  description = "The git commit every service currently runs."
  value       = var.image_tag
}

output "ecs_cluster_name" {
  description = "ECS cluster running the services (aws ecs list-services --cluster <this>)."
  value       = aws_ecs_cluster.main.name
}

output "crawler_schedule_name" {
  description = "EventBridge Scheduler schedule that starts the crawler."
  value       = aws_scheduler_schedule.crawler.name
}

output "crawler_task_definition_arn" {
  description = "Task definition to run the crawler by hand (aws ecs run-task)."
  value       = aws_ecs_task_definition.crawler.arn
}

output "private_subnet_ids" {
  description = "Private subnets (for running the crawler by hand)."
  value       = aws_subnet.private[*].id
}

output "tasks_security_group_id" {
  description = "Security group of the tasks (for running the crawler by hand)."
  value       = aws_security_group.tasks.id
}

output "log_group_names" {
  description = "CloudWatch log group of each service."
  value       = { for name, group in aws_cloudwatch_log_group.service : name => group.name }
}

output "mq_broker_id" {
  description = "Amazon MQ broker (its RabbitMQ console is reachable from inside the VPC only)."
  value       = aws_mq_broker.main.id
}

output "atlas_project_id" {
  description = "MongoDB Atlas project holding the cluster."
  value       = mongodbatlas_project.main.id
}

output "atlas_cluster_name" {
  description = "MongoDB Atlas cluster name."
  value       = mongodbatlas_advanced_cluster.main.name
}

output "secret_arns" {
  description = "Secrets Manager secrets holding the broker and database connection strings."
  value = {
    rabbitmq_url = aws_secretsmanager_secret.rabbitmq_url.arn
    mongodb_url  = aws_secretsmanager_secret.mongodb_url.arn
  }
}
