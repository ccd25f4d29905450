# One customer-managed key encrypts the logs, the secrets, the images and the schedules.

resource "aws_kms_key" "main" {
  description             = "${local.name}: logs, secrets, images and schedules"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  # A key policy: its Resource "*" means this key and nothing else.
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        # The account administers and uses the key through IAM policies (the roles in iam.tf).
        Sid       = "AccountAdministers"
        Effect    = "Allow"
        Principal = { AWS = "arn:${data.aws_partition.current.partition}:iam::${local.account_id}:root" }
        Action    = "kms:*"
        Resource  = "*"
      },
      {
        # CloudWatch Logs encrypts this account's log groups (services, flow logs, WAF, ECS Exec).
        Sid       = "CloudWatchLogsEncrypts"
        Effect    = "Allow"
        Principal = { Service = "logs.${var.aws_region}.amazonaws.com" }
        Action    = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
        Resource  = "*"
        Condition = {
          ArnLike = {
            "kms:EncryptionContext:aws:logs:arn" = "arn:${data.aws_partition.current.partition}:logs:${var.aws_region}:${local.account_id}:log-group:*"
          }
        }
      },
    ]
  })
}

resource "aws_kms_alias" "main" {
  name          = "alias/${local.name}"
  target_key_id = aws_kms_key.main.key_id
}
