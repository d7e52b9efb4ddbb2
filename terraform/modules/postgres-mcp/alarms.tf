# CloudWatch alarms for what pages an operator, each on a metric AWS publishes anyway (no agent):
#
#   5xx rate       ALB: (target 5xx + the ALB's own 5xx) / requests, in percent, above
#                  alarm_5xx_rate_percent over a period with at least alarm_5xx_min_requests requests.
#                  The ALB's own 502/503/504 count: with no healthy target, no task answers at all.
#   unhealthy      target group: UnHealthyHostCount > 0 (a task fails GET /health: draining too long,
#                  stalled, or unreachable). It is what the target group acts on, seen by a human.
#   latency p99    target group: TargetResponseTime p99 above alarm_response_time_p99_seconds.
#   running        ECS (Container Insights): DesiredTaskCount - RunningTaskCount > 0 for the whole
#                  evaluation: tasks crash-loop, or cannot be placed or pulled. Needs
#                  container_insights enabled or enhanced, so it exists only then.
#   EFS credits    BurstCreditBalance below alarm_efs_burst_credit_balance_bytes (bursting mode only):
#                  past zero, reads of kb.db at start-up and reload crawl at the baseline rate.
#
# Every alarm notifies one SNS topic on ALARM and on OK: alarm_sns_topic_arn, or one created here.
# Periods without data (no traffic, no task) are not breaching, except where noted.

locals {
  alarm_topic_arn = var.create_alarms ? (var.alarm_sns_topic_arn != null ? var.alarm_sns_topic_arn : aws_sns_topic.alarms[0].arn) : null
  alarm_actions   = var.create_alarms ? [local.alarm_topic_arn] : []
  alb_dimensions  = { LoadBalancer = aws_lb.this.arn_suffix }
  tg_dimensions   = { LoadBalancer = aws_lb.this.arn_suffix, TargetGroup = aws_lb_target_group.this.arn_suffix }
}

resource "aws_sns_topic" "alarms" {
  #checkov:skip=CKV_AWS_26:SSE is optional (var.alarm_sns_kms_key_arn): CloudWatch cannot publish to a topic under the AWS-managed aws/sns key, only under a customer-managed key whose policy admits it, and alarm messages carry metric names and numbers, no secrets.
  count = var.create_alarms && var.alarm_sns_topic_arn == null ? 1 : 0

  name              = "${var.name}-alarms"
  kms_master_key_id = var.alarm_sns_kms_key_arn
  tags              = local.tags
}

resource "aws_sns_topic_subscription" "alarm_email" {
  for_each = var.create_alarms && var.alarm_sns_topic_arn == null ? toset(var.alarm_email_addresses) : toset([])

  topic_arn = aws_sns_topic.alarms[0].arn
  protocol  = "email"
  endpoint  = each.value
}

resource "aws_cloudwatch_metric_alarm" "alb_5xx_rate" {
  count = var.create_alarms ? 1 : 0

  alarm_name          = "${var.name}-alb-5xx-rate"
  alarm_description   = "More than ${var.alarm_5xx_rate_percent}% of requests to ${var.name} answered 5xx (by a task or by the ALB) for ${var.alarm_evaluation_periods} x ${var.alarm_period_seconds} s."
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.alarm_5xx_rate_percent
  evaluation_periods  = var.alarm_evaluation_periods
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags                = local.tags

  metric_query {
    id          = "rate"
    label       = "5xx per 100 requests"
    expression  = "IF(requests >= ${var.alarm_5xx_min_requests}, 100 * (FILL(target5xx, 0) + FILL(alb5xx, 0)) / requests, 0)"
    return_data = true
  }

  dynamic "metric_query" {
    for_each = { requests = "RequestCount", target5xx = "HTTPCode_Target_5XX_Count", alb5xx = "HTTPCode_ELB_5XX_Count" }
    content {
      id = metric_query.key
      metric {
        namespace   = "AWS/ApplicationELB"
        metric_name = metric_query.value
        dimensions  = local.alb_dimensions
        period      = var.alarm_period_seconds
        stat        = "Sum"
      }
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "unhealthy_targets" {
  count = var.create_alarms ? 1 : 0

  alarm_name          = "${var.name}-unhealthy-targets"
  alarm_description   = "A ${var.name} task fails the target group's GET /health (out of rotation) for ${var.alarm_evaluation_periods} x ${var.alarm_period_seconds} s."
  namespace           = "AWS/ApplicationELB"
  metric_name         = "UnHealthyHostCount"
  dimensions          = local.tg_dimensions
  statistic           = "Maximum"
  period              = var.alarm_period_seconds
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  evaluation_periods  = var.alarm_evaluation_periods
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags                = local.tags
}

resource "aws_cloudwatch_metric_alarm" "response_time_p99" {
  count = var.create_alarms ? 1 : 0

  alarm_name          = "${var.name}-response-time-p99"
  alarm_description   = "The 99th percentile of ${var.name}'s response time is above ${var.alarm_response_time_p99_seconds} s for ${var.alarm_evaluation_periods} x ${var.alarm_period_seconds} s."
  namespace           = "AWS/ApplicationELB"
  metric_name         = "TargetResponseTime"
  dimensions          = local.tg_dimensions
  extended_statistic  = "p99"
  period              = var.alarm_period_seconds
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.alarm_response_time_p99_seconds
  evaluation_periods  = var.alarm_evaluation_periods
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags                = local.tags
}

resource "aws_cloudwatch_metric_alarm" "ecs_running_below_desired" {
  count = var.create_alarms && var.container_insights != "disabled" ? 1 : 0

  alarm_name          = "${var.name}-ecs-running-below-desired"
  alarm_description   = "${var.name} runs fewer tasks than desired for ${var.alarm_evaluation_periods} x ${var.alarm_period_seconds} s: tasks crash-loop or cannot start (see the service's events and the init/serve log streams)."
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  evaluation_periods  = var.alarm_evaluation_periods
  # No Container Insights data at all is not evidence either way: keep the last state.
  treat_missing_data = "missing"
  alarm_actions      = local.alarm_actions
  ok_actions         = local.alarm_actions
  tags               = local.tags

  metric_query {
    id          = "missing_tasks"
    label       = "desired - running"
    expression  = "desired - running"
    return_data = true
  }

  dynamic "metric_query" {
    for_each = { desired = "DesiredTaskCount", running = "RunningTaskCount" }
    content {
      id = metric_query.key
      metric {
        namespace   = "ECS/ContainerInsights"
        metric_name = metric_query.value
        dimensions  = { ClusterName = aws_ecs_cluster.this.name, ServiceName = aws_ecs_service.this.name }
        period      = var.alarm_period_seconds
        stat        = "Average"
      }
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "efs_burst_credits_low" {
  count = var.create_alarms && var.efs_throughput_mode == "bursting" ? 1 : 0

  alarm_name          = "${var.name}-efs-burst-credits-low"
  alarm_description   = "The ${var.name} EFS file system has fewer than ${var.alarm_efs_burst_credit_balance_bytes} bytes of burst credits: once they are gone, reads run at the baseline rate (elastic throughput mode avoids this)."
  namespace           = "AWS/EFS"
  metric_name         = "BurstCreditBalance"
  dimensions          = { FileSystemId = aws_efs_file_system.this.id }
  statistic           = "Minimum"
  period              = var.alarm_period_seconds
  comparison_operator = "LessThanThreshold"
  threshold           = var.alarm_efs_burst_credit_balance_bytes
  evaluation_periods  = var.alarm_evaluation_periods
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags                = local.tags
}
