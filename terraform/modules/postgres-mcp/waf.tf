# A regional WAFv2 web ACL in front of the ALB (create_waf_web_acl, on by default), or the caller's
# own (waf_web_acl_arn). Rate-based rules count requests per client IP over a sliding window and
# answer 429 while a client is above its limit:
#   - /api/login: password guessing from one address (the server's failed-login limiter keys on the
#     client too, but every guess still costs a bcrypt on a task: WAF stops them before the ALB);
#   - /mcp: one runaway client must not take the whole service's capacity.
# Then AWS's known-bad-inputs rule group and any in waf_managed_rule_groups; everything else is
# allowed: every MCP request still needs a bearer token, which WAF cannot check.

locals {
  waf_rate_rules = {
    login = { priority = 1, path = "/api/login", limit = var.waf_login_rate_limit }
    mcp   = { priority = 2, path = "/mcp", limit = var.waf_mcp_rate_limit }
  }
  waf_web_acl_arn = var.create_waf_web_acl ? aws_wafv2_web_acl.this[0].arn : var.waf_web_acl_arn
}

resource "aws_wafv2_web_acl" "this" {
  #checkov:skip=CKV2_AWS_31:WAF logging needs a destination (a CloudWatch log group named aws-waf-logs-*, S3 or Firehose) and a retention policy that are the caller's: aws_wafv2_web_acl_logging_configuration on output waf_web_acl_arn.
  count = var.create_waf_web_acl ? 1 : 0

  name        = "${var.name}-alb"
  description = "postgres-mcp ALB: per-IP rate limits on /api/login and /mcp, managed rule groups"
  scope       = "REGIONAL"
  tags        = local.tags

  default_action {
    allow {}
  }

  custom_response_body {
    key          = "rate_limited"
    content_type = "APPLICATION_JSON"
    content      = jsonencode({ error = "rate_limited", message = "too many requests from this address; retry later" })
  }

  dynamic "rule" {
    for_each = local.waf_rate_rules
    content {
      name     = "rate-${rule.key}"
      priority = rule.value.priority

      action {
        block {
          custom_response {
            response_code            = 429
            custom_response_body_key = "rate_limited"
          }
        }
      }

      statement {
        rate_based_statement {
          limit                 = rule.value.limit
          evaluation_window_sec = var.waf_rate_window_seconds
          aggregate_key_type    = "IP" # the ALB sees the client's address: no X-Forwarded-For to trust

          scope_down_statement {
            byte_match_statement {
              search_string         = rule.value.path
              positional_constraint = "STARTS_WITH"

              field_to_match {
                uri_path {}
              }

              text_transformation {
                priority = 0
                type     = "NONE"
              }
            }
          }
        }
      }

      visibility_config {
        cloudwatch_metrics_enabled = true
        metric_name                = "${var.name}-rate-${rule.key}"
        sampled_requests_enabled   = true
      }
    }
  }

  # Request patterns of known exploits (Log4j lookups, Java deserialization, localhost Host headers,
  # PROPFIND...): cheap (200 WCUs), few false positives, and nothing a postgres-mcp client sends.
  rule {
    name     = "AWSManagedRulesKnownBadInputsRuleSet"
    priority = 10

    override_action {
      none {}
    }

    statement {
      managed_rule_group_statement {
        name        = "AWSManagedRulesKnownBadInputsRuleSet"
        vendor_name = "AWS"
      }
    }

    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${var.name}-known-bad-inputs"
      sampled_requests_enabled   = true
    }
  }

  dynamic "rule" {
    for_each = var.waf_managed_rule_groups
    content {
      name     = rule.value
      priority = 20 + rule.key

      override_action {
        none {}
      }

      statement {
        managed_rule_group_statement {
          name        = rule.value
          vendor_name = "AWS"
        }
      }

      visibility_config {
        cloudwatch_metrics_enabled = true
        metric_name                = "${var.name}-${rule.value}"
        sampled_requests_enabled   = true
      }
    }
  }

  visibility_config {
    cloudwatch_metrics_enabled = true
    metric_name                = "${var.name}-alb"
    sampled_requests_enabled   = true
  }

  lifecycle {
    precondition {
      condition     = var.waf_web_acl_arn == null
      error_message = "Set create_waf_web_acl = false to use your own web ACL (waf_web_acl_arn): an ALB has one web ACL."
    }
  }
}

resource "aws_wafv2_web_acl_association" "this" {
  count = var.create_waf_web_acl || var.waf_web_acl_arn != null ? 1 : 0

  resource_arn = aws_lb.this.arn
  # Spelled out rather than local.waf_web_acl_arn, so that scanners (checkov) follow the reference.
  web_acl_arn = var.create_waf_web_acl ? aws_wafv2_web_acl.this[0].arn : var.waf_web_acl_arn
}
