# Connection strings (with their credentials) live in Secrets Manager; ECS injects them into the
# containers as FRAGMENTY_RABBITMQ_URL and FRAGMENTY_MONGODB_URL at start.

resource "aws_secretsmanager_secret" "rabbitmq_url" {
  #checkov:skip=CKV2_AWS_57:The password belongs to the Amazon MQ user; rotate it with terraform (taint random_password.mq, apply), which updates broker and secret together
  name                    = "${local.name}/rabbitmq-url"
  description             = "AMQPS URL of the Amazon MQ broker, with credentials"
  kms_key_id              = aws_kms_key.main.arn
  recovery_window_in_days = 7
}

resource "aws_secretsmanager_secret_version" "rabbitmq_url" {
  secret_id     = aws_secretsmanager_secret.rabbitmq_url.id
  secret_string = local.rabbitmq_url
}

resource "aws_secretsmanager_secret" "mongodb_url" {
  #checkov:skip=CKV2_AWS_57:The password belongs to the Atlas database user; rotate it with terraform (taint random_password.mongodb, apply), which updates user and secret together
  name                    = "${local.name}/mongodb-url"
  description             = "MongoDB Atlas connection string (peering), with credentials"
  kms_key_id              = aws_kms_key.main.arn
  recovery_window_in_days = 7
}

resource "aws_secretsmanager_secret_version" "mongodb_url" {
  secret_id     = aws_secretsmanager_secret.mongodb_url.id
  secret_string = local.mongodb_url

  lifecycle {
    precondition {
      condition     = startswith(local.mongodb_url, "mongodb+srv://fragmenty:")
      error_message = "Atlas has not published the cluster's peering connection string yet: wait until the peering is active in Atlas, then run terraform apply again."
    }
  }
}

# The alerts service's Telegram bot token; ECS injects it as FRAGMENTY_ALERTS_TELEGRAM_TOKEN.
# Empty (the default) leaves the bot off; set var.telegram_bot_token, or the secret's value.
resource "aws_secretsmanager_secret" "telegram_bot_token" {
  #checkov:skip=CKV2_AWS_57:A bot token is rotated by @BotFather, not by AWS; set the new one with terraform apply
  name                    = "${local.name}/telegram-bot-token"
  description             = "Telegram bot token of the alerts service (empty: bot off)"
  kms_key_id              = aws_kms_key.main.arn
  recovery_window_in_days = 7
}

resource "aws_secretsmanager_secret_version" "telegram_bot_token" {
  secret_id = aws_secretsmanager_secret.telegram_bot_token.id
  # A secret value cannot be empty; one space is read as "no token" (the service strips it).
  secret_string = var.telegram_bot_token != "" ? var.telegram_bot_token : " "
}
