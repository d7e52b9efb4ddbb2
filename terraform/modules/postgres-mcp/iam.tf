# Three roles, each with only what its holder does:
#   execution role - ECS itself: pull the image, write the log stream, read the listed secrets;
#   task role      - the server: mount the access point read-only (and read the bucket if asked);
#   seed role      - the one-off seed task: read the bucket, mount the access point read-write.

locals {
  # An ECR image gets pull permission on its own repository only; any other registry needs none.
  ecr_match = try(regex("^([0-9]{12})\\.dkr\\.ecr(?:-fips)?\\.([a-z0-9-]+)\\.amazonaws\\.com(?:\\.cn)?/([^:@]+)", var.image), null)
  ecr_repository_arn = local.ecr_match == null ? null : format(
    "arn:%s:ecr:%s:%s:repository/%s", local.partition, local.ecr_match[1], local.ecr_match[0], local.ecr_match[2]
  )

  # Environment variable => ARN, as ECS `secrets` takes them.
  secrets = merge(
    var.secrets,
    var.database_url_secret_arn == null ? {} : { PGMCP_DATABASE_URL = var.database_url_secret_arn },
  )
  # IAM wants the secret's own ARN: drop a `:json-key:version-stage:version-id` suffix (the ARN of a
  # Secrets Manager secret has exactly seven colon-separated fields).
  secretsmanager_arns = distinct([
    for arn in values(local.secrets) : join(":", slice(split(":", arn), 0, 7)) if split(":", arn)[2] == "secretsmanager"
  ])
  ssm_parameter_arns = distinct([for arn in values(local.secrets) : arn if split(":", arn)[2] == "ssm"])

  s3_bucket_arn = local.create_seed_task ? aws_s3_bucket.config[0].arn : null
}

data "aws_iam_policy_document" "ecs_tasks_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }

    # Confused-deputy guard: only ECS acting for this account may assume the roles.
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }

    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = ["arn:${local.partition}:ecs:${local.region}:${local.account_id}:*"]
    }
  }
}

################################################################################
# Execution role
################################################################################

resource "aws_iam_role" "execution" {
  name_prefix        = "${var.name}-exec-"
  description        = "ECS pulls the postgres-mcp image, writes its logs and reads its secrets"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
  tags               = local.tags
}

data "aws_iam_policy_document" "execution" {
  statement {
    sid       = "Logs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.this.arn}:*"]
  }

  dynamic "statement" {
    for_each = local.ecr_repository_arn == null ? [] : [1]
    content {
      sid       = "EcrLogin"
      actions   = ["ecr:GetAuthorizationToken"]
      resources = ["*"] # the action has no resource-level permissions
    }
  }

  dynamic "statement" {
    for_each = local.ecr_repository_arn == null ? [] : [local.ecr_repository_arn]
    content {
      sid       = "EcrPull"
      actions   = ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]
      resources = [statement.value]
    }
  }

  dynamic "statement" {
    for_each = length(local.secretsmanager_arns) > 0 ? [1] : []
    content {
      sid       = "ReadListedSecrets"
      actions   = ["secretsmanager:GetSecretValue"]
      resources = local.secretsmanager_arns
    }
  }

  dynamic "statement" {
    for_each = length(local.ssm_parameter_arns) > 0 ? [1] : []
    content {
      sid       = "ReadListedParameters"
      actions   = ["ssm:GetParameters"]
      resources = local.ssm_parameter_arns
    }
  }

  dynamic "statement" {
    for_each = length(var.secrets_kms_key_arns) > 0 ? [1] : []
    content {
      sid       = "DecryptListedSecrets"
      actions   = ["kms:Decrypt"]
      resources = var.secrets_kms_key_arns
    }
  }
}

resource "aws_iam_role_policy" "execution" {
  name   = "execution"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.execution.json
}

################################################################################
# Task role (the server)
################################################################################

resource "aws_iam_role" "task" {
  name_prefix        = "${var.name}-task-"
  description        = "postgres-mcp tasks: read-only mount of the shared configuration"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
  tags               = local.tags
}

data "aws_iam_policy_document" "task" {
  statement {
    sid       = "MountReadOnlyThroughTheAccessPoint"
    actions   = ["elasticfilesystem:ClientMount"] # no ClientWrite: the volume is read-only for the server
    resources = [aws_efs_file_system.this.arn]

    condition {
      test     = "StringEquals"
      variable = "elasticfilesystem:AccessPointArn"
      values   = [aws_efs_access_point.this.arn]
    }
  }

  dynamic "statement" {
    for_each = var.create_s3_bucket && var.grant_task_s3_read ? [1] : []
    content {
      sid       = "ListConfigPrefix"
      actions   = ["s3:ListBucket"]
      resources = [local.s3_bucket_arn]

      condition {
        test     = "StringLike"
        variable = "s3:prefix"
        values   = ["${var.s3_config_prefix}*"]
      }
    }
  }

  dynamic "statement" {
    for_each = var.create_s3_bucket && var.grant_task_s3_read ? [1] : []
    content {
      sid       = "ReadConfigObjects"
      actions   = ["s3:GetObject", "s3:GetObjectVersion"]
      resources = ["${local.s3_bucket_arn}/${var.s3_config_prefix}*"]
    }
  }

  dynamic "statement" {
    for_each = var.create_s3_bucket && var.grant_task_s3_read && var.s3_kms_key_arn != null ? [1] : []
    content {
      sid       = "DecryptConfigObjects"
      actions   = ["kms:Decrypt"]
      resources = [var.s3_kms_key_arn]
    }
  }
}

resource "aws_iam_role_policy" "task" {
  name   = "task"
  role   = aws_iam_role.task.id
  policy = data.aws_iam_policy_document.task.json
}

################################################################################
# Seed role (the one-off task that copies the bucket onto the volume)
################################################################################

resource "aws_iam_role" "seed" {
  count = local.create_seed_task ? 1 : 0

  name_prefix        = "${var.name}-seed-"
  description        = "postgres-mcp seed task: copies the configuration bucket onto the EFS access point"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
  tags               = local.tags
}

data "aws_iam_policy_document" "seed" {
  count = local.create_seed_task ? 1 : 0

  statement {
    sid       = "MountReadWriteThroughTheAccessPoint"
    actions   = ["elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite"]
    resources = [aws_efs_file_system.this.arn]

    condition {
      test     = "StringEquals"
      variable = "elasticfilesystem:AccessPointArn"
      values   = [aws_efs_access_point.this.arn]
    }
  }

  statement {
    sid       = "ListConfigPrefix"
    actions   = ["s3:ListBucket"]
    resources = [local.s3_bucket_arn]

    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${var.s3_config_prefix}*"]
    }
  }

  statement {
    sid       = "ReadConfigObjects"
    actions   = ["s3:GetObject"]
    resources = ["${local.s3_bucket_arn}/${var.s3_config_prefix}*"]
  }

  dynamic "statement" {
    for_each = var.s3_kms_key_arn == null ? [] : [1]
    content {
      sid       = "DecryptConfigObjects"
      actions   = ["kms:Decrypt"]
      resources = [var.s3_kms_key_arn]
    }
  }
}

resource "aws_iam_role_policy" "seed" {
  count = local.create_seed_task ? 1 : 0

  name   = "seed"
  role   = aws_iam_role.seed[0].id
  policy = data.aws_iam_policy_document.seed[0].json
}
