# The shared configuration volume: tokens.yaml, users.yaml, session.key and kb.db, read by every task.
#
# Tasks reach it only through one access point, which pins the POSIX identity (10001:10001, the
# container's user) and the directory (/postgres-mcp). Two layers keep the tasks read-only: the mount
# point is readOnly, and the task role has ClientMount but not ClientWrite; only the seed task's role
# and the roles in efs_writer_role_arns may write. The server sees
# other clients' writes by polling (PGMCP_WATCH_MODE=poll): NFS raises no inotify events for them.

resource "aws_efs_file_system" "this" {
  #checkov:skip=CKV_AWS_184:Always encrypted at rest; a customer-managed key is optional (var.efs_kms_key_arn), the AWS-managed key is used otherwise.
  creation_token                  = "${var.name}-config"
  encrypted                       = true
  kms_key_id                      = var.efs_kms_key_arn
  performance_mode                = "generalPurpose"
  throughput_mode                 = var.efs_throughput_mode
  provisioned_throughput_in_mibps = var.efs_throughput_mode == "provisioned" ? var.efs_provisioned_throughput_mibps : null
  tags                            = merge(local.tags, { Name = "${var.name}-config" })

  dynamic "lifecycle_policy" {
    for_each = var.efs_transition_to_ia == null ? [] : [var.efs_transition_to_ia]
    content {
      transition_to_ia = lifecycle_policy.value
    }
  }

  dynamic "lifecycle_policy" {
    # A file read again goes back to Standard storage at once (kb.db is read at every new version).
    for_each = var.efs_transition_to_ia == null ? [] : ["AFTER_1_ACCESS"]
    content {
      transition_to_primary_storage_class = lifecycle_policy.value
    }
  }

  lifecycle {
    precondition {
      condition     = var.efs_throughput_mode != "provisioned" || var.efs_provisioned_throughput_mibps != null
      error_message = "efs_provisioned_throughput_mibps is required when efs_throughput_mode = provisioned."
    }
  }
}

resource "aws_efs_backup_policy" "this" {
  file_system_id = aws_efs_file_system.this.id

  backup_policy {
    status = var.efs_backup ? "ENABLED" : "DISABLED"
  }
}

resource "aws_efs_mount_target" "this" {
  # count, not for_each: the subnet IDs may be unknown until a VPC created in the same apply exists.
  count = length(var.private_subnet_ids)

  file_system_id  = aws_efs_file_system.this.id
  subnet_id       = var.private_subnet_ids[count.index]
  security_groups = [aws_security_group.efs.id]
}

resource "aws_efs_access_point" "this" {
  file_system_id = aws_efs_file_system.this.id
  tags           = merge(local.tags, { Name = "${var.name}-config" })

  # Every operation through the access point runs as the container's user, whatever the client says.
  posix_user {
    uid = local.run_as
    gid = local.run_as
  }

  root_directory {
    path = "/postgres-mcp"

    # Created on first use, owned by the same user; the server only needs to read it.
    creation_info {
      owner_uid   = local.run_as
      owner_gid   = local.run_as
      permissions = "0750"
    }
  }
}

# With a file system policy in place, a client without IAM credentials gets nothing: every mount must
# be signed (the task definition sets iam = ENABLED). Roles created here (task, seed) are granted by
# their own identity policies in iam.tf; this policy adds the TLS requirement and the writers the
# caller names, which may live in another stack.
data "aws_iam_policy_document" "efs" {
  statement {
    sid       = "DenyWithoutTls"
    effect    = "Deny"
    actions   = ["*"]
    resources = [aws_efs_file_system.this.arn]

    principals {
      type        = "AWS"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }

  dynamic "statement" {
    for_each = length(var.efs_writer_role_arns) > 0 ? [1] : []
    content {
      sid       = "WritersThroughTheAccessPoint"
      effect    = "Allow"
      actions   = ["elasticfilesystem:ClientMount", "elasticfilesystem:ClientWrite"]
      resources = [aws_efs_file_system.this.arn]

      principals {
        type        = "AWS"
        identifiers = var.efs_writer_role_arns
      }

      condition {
        test     = "StringEquals"
        variable = "elasticfilesystem:AccessPointArn"
        values   = [aws_efs_access_point.this.arn]
      }
    }
  }
}

resource "aws_efs_file_system_policy" "this" {
  file_system_id                     = aws_efs_file_system.this.id
  policy                             = data.aws_iam_policy_document.efs.json
  bypass_policy_lockout_safety_check = false
}
