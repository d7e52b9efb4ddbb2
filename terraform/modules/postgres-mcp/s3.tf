# Optional (create_s3_bucket): the object-storage pattern. Operators write the shared files to a
# versioned, private bucket (every change is a version, so a bad tokens.yaml is one restore away),
# and the seed task (ecs.tf) copies them onto the EFS volume, which the tasks read. The servers
# never need S3 credentials unless grant_task_s3_read says so.

resource "aws_s3_bucket" "config" {
  #checkov:skip=CKV_AWS_144:Cross-region replication is a disaster-recovery choice for the caller; the bucket only holds copies of small config files that are kept versioned.
  #checkov:skip=CKV2_AWS_62:No consumer of event notifications: the seed task is run on demand.
  #checkov:skip=CKV_AWS_18:Access logging is optional (var.s3_access_logs): the target bucket is the caller's.
  count = var.create_s3_bucket ? 1 : 0

  bucket        = var.s3_bucket_name
  bucket_prefix = var.s3_bucket_name == null ? "${var.name}-config-" : null
  force_destroy = var.s3_force_destroy
  tags          = local.tags
}

resource "aws_s3_bucket_public_access_block" "config" {
  count = var.create_s3_bucket ? 1 : 0

  bucket                  = aws_s3_bucket.config[0].id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "config" {
  count = var.create_s3_bucket ? 1 : 0

  bucket = aws_s3_bucket.config[0].id

  rule {
    object_ownership = "BucketOwnerEnforced" # ACLs disabled
  }
}

resource "aws_s3_bucket_versioning" "config" {
  count = var.create_s3_bucket ? 1 : 0

  bucket = aws_s3_bucket.config[0].id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "config" {
  count = var.create_s3_bucket ? 1 : 0

  bucket = aws_s3_bucket.config[0].id

  rule {
    # SSE-KMS: the caller's key, or the AWS-managed aws/s3 (null key ID). An S3 Bucket Key cuts the
    # requests S3 makes to KMS, and their cost.
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = var.s3_kms_key_arn
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "config" {
  count = var.create_s3_bucket ? 1 : 0

  bucket = aws_s3_bucket.config[0].id

  rule {
    id     = "expire-old-versions"
    status = "Enabled"

    filter {}

    noncurrent_version_expiration {
      noncurrent_days = var.s3_noncurrent_version_expiration_days
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }

  # Versioning must exist before a rule about noncurrent versions makes sense.
  depends_on = [aws_s3_bucket_versioning.config]
}

resource "aws_s3_bucket_logging" "config" {
  count = var.create_s3_bucket && var.s3_access_logs != null ? 1 : 0

  bucket        = aws_s3_bucket.config[0].id
  target_bucket = var.s3_access_logs.bucket
  target_prefix = var.s3_access_logs.prefix
}

data "aws_iam_policy_document" "s3" {
  count = var.create_s3_bucket ? 1 : 0

  statement {
    sid       = "DenyWithoutTls"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.config[0].arn, "${aws_s3_bucket.config[0].arn}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }

  statement {
    sid       = "DenyOldTls"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.config[0].arn, "${aws_s3_bucket.config[0].arn}/*"]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "NumericLessThan"
      variable = "s3:TlsVersion"
      values   = ["1.2"]
    }
  }
}

resource "aws_s3_bucket_policy" "config" {
  count = var.create_s3_bucket ? 1 : 0

  bucket = aws_s3_bucket.config[0].id
  policy = data.aws_iam_policy_document.s3[0].json

  # A bucket policy put before the public access block could be judged public and refused.
  depends_on = [aws_s3_bucket_public_access_block.config]
}
