# One log group for the service and the seed task (stream prefixes `serve`, `seed` and `init` for the
# /tmp init container). The server
# logs JSON lines (PGMCP_LOG_FORMAT=json): an access line per request and an audit line per database
# tool call, with OpenTelemetry field names (`service.instance.id`, `http.request.id`, `user.name`,
# `pgmcp.outcome`, `error.type`, ...), so Logs Insights can filter and count without parsing.

resource "aws_cloudwatch_log_group" "this" {
  #checkov:skip=CKV_AWS_158:Encrypted by CloudWatch Logs either way; a customer-managed key is optional (var.log_kms_key_arn) because its key policy must be prepared for the logs service.
  #checkov:skip=CKV_AWS_338:Retention is the caller's choice (var.log_retention_days, default 90 days); set 365 or more where a compliance regime asks for a year.
  name              = "/ecs/${var.name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.log_kms_key_arn
  tags              = local.tags
}
