# `terraform test` (1.7+) with a mocked AWS provider: plans the module without credentials or network
# (the provider binary is needed for its schema only) and checks what the plan would create, and that
# the variable validations and preconditions refuse what they exist to refuse.
# terraform/tests/run.sh runs it where terraform and the hashicorp/aws provider are available.

mock_provider "aws" {
  mock_data "aws_subnet" {
    defaults = { cidr_block = "10.0.0.0/24" }
  }
  mock_data "aws_region" {
    defaults = { name = "eu-west-1" }
  }
  mock_data "aws_partition" {
    defaults = { partition = "aws" }
  }
  mock_data "aws_caller_identity" {
    defaults = { account_id = "123456789012" }
  }
  mock_data "aws_iam_policy_document" {
    defaults = { json = "{}" }
  }
}

variables {
  vpc_id                = "vpc-0123456789abcdef0"
  public_subnet_ids     = ["subnet-0aaaaaaaaaaaaaaa1", "subnet-0aaaaaaaaaaaaaaa2"]
  private_subnet_ids    = ["subnet-0bbbbbbbbbbbbbbb1", "subnet-0bbbbbbbbbbbbbbb2"]
  allowed_ingress_cidrs = ["0.0.0.0/0"]
  certificate_arn       = "arn:aws:acm:eu-west-1:123456789012:certificate/00000000-0000-0000-0000-000000000000"
  image                 = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/postgres-mcp:1.0.0"
  public_url            = "https://mcp.example.com"
  create_s3_bucket      = true
}

# The ALB's two subnets, each with its own range (a mock's defaults would give both the same).
override_data {
  target = data.aws_subnet.alb[0]
  values = { cidr_block = "10.0.0.0/24" }
}

override_data {
  target = data.aws_subnet.alb[1]
  values = { cidr_block = "10.0.1.0/24" }
}

run "defaults_plan_the_documented_service" {
  command = plan

  assert {
    condition = (
      aws_lb_target_group.this.health_check[0].path == "/health" &&
      aws_lb_target_group.this.health_check[0].interval == 30 &&
      aws_lb_target_group.this.health_check[0].healthy_threshold == 2 &&
      aws_lb_target_group.this.health_check[0].unhealthy_threshold == 3 &&
      aws_lb_target_group.this.health_check[0].timeout == 5
    )
    error_message = "The health check must be GET /health every 30 s, healthy 2, unhealthy 3, timeout 5."
  }

  assert {
    condition     = aws_lb_target_group.this.deregistration_delay == "30"
    error_message = "The deregistration delay must be 30 s (drain 5 + grace 25)."
  }

  assert {
    condition     = aws_lb_listener.https.protocol == "HTTPS" && aws_lb_listener.http.default_action[0].redirect[0].protocol == "HTTPS"
    error_message = "HTTPS on 443, and 80 redirecting to it."
  }

  assert {
    condition = (
      aws_lb_listener_rule.block_metrics.action[0].fixed_response[0].status_code == "404" &&
      contains(tolist(aws_lb_listener_rule.block_metrics.condition)[0].path_pattern[0].values, "/metrics") &&
      contains(tolist(aws_lb_listener_rule.block_metrics.condition)[0].path_pattern[0].values, "/health/details")
    )
    error_message = "/metrics and /health/details must be answered 404 by the ALB."
  }

  assert {
    condition = aws_efs_file_system.this.encrypted && [
      for v in aws_ecs_task_definition.this.volume : [v.efs_volume_configuration[0].transit_encryption, v.efs_volume_configuration[0].authorization_config[0].iam]
      if length(v.efs_volume_configuration) > 0
    ] == [["ENABLED", "ENABLED"]]
    error_message = "EFS must be encrypted at rest and mounted with TLS and IAM."
  }

  # The rendered container definitions, as ECS will receive them: tmp-init first, then the server.
  assert {
    condition = (
      jsondecode(aws_ecs_task_definition.this.container_definitions)[0].name == "tmp-init" &&
      jsondecode(aws_ecs_task_definition.this.container_definitions)[0].command == ["chown", "10001:10001", "/tmp"] &&
      jsondecode(aws_ecs_task_definition.this.container_definitions)[1].dependsOn[0].condition == "SUCCESS"
    )
    error_message = "The init container must hand /tmp to 10001 before the server starts."
  }

  assert {
    condition = (
      jsondecode(aws_ecs_task_definition.this.container_definitions)[1].user == "10001:10001" &&
      jsondecode(aws_ecs_task_definition.this.container_definitions)[1].readonlyRootFilesystem &&
      jsondecode(aws_ecs_task_definition.this.container_definitions)[1].stopTimeout == 35 &&
      jsondecode(aws_ecs_task_definition.this.container_definitions)[1].mountPoints == [
        { sourceVolume = "config", containerPath = "/app/config", readOnly = true },
        { sourceVolume = "tmp", containerPath = "/tmp", readOnly = false },
      ]
    )
    error_message = "The server must run as 10001 on a read-only root, with /app/config read-only and /tmp writable."
  }

  assert {
    condition = (
      jsondecode(aws_ecs_task_definition.this.container_definitions)[1].healthCheck.command ==
      ["CMD", "/usr/local/bin/postgres-mcp", "healthcheck", "--path", "/livez"]
    )
    error_message = "The container health check must probe /livez: ECS replaces unhealthy tasks, and /readyz fails while draining."
  }

  assert {
    condition = (
      { for e in jsondecode(aws_ecs_task_definition.this.container_definitions)[1].environment : e.name => e.value } == {
        PGMCP_AUTH_SESSION_SECRET_FILE = "/app/config/session.key"
        PGMCP_AUTH_TOKENS_FILE         = "/app/config/tokens.yaml"
        PGMCP_AUTH_TRUSTED_PROXIES     = "10.0.0.0/24,10.0.1.0/24"
        PGMCP_AUTH_USERS_FILE          = "/app/config/users.yaml"
        PGMCP_KB_PATH                  = "/app/config/kb.db"
        PGMCP_LOG_FORMAT               = "json"
        PGMCP_LOG_LEVEL                = "info"
        PGMCP_PUBLIC_URL               = "https://mcp.example.com"
        PGMCP_SHUTDOWN_DRAIN_DELAY     = "5s"
        PGMCP_SHUTDOWN_GRACE           = "25s"
        PGMCP_WATCH_MODE               = "poll"
      }
    )
    error_message = "The container environment is not the documented one."
  }

  assert {
    condition = (
      aws_s3_bucket_public_access_block.config[0].block_public_acls &&
      aws_s3_bucket_public_access_block.config[0].restrict_public_buckets &&
      aws_s3_bucket_versioning.config[0].versioning_configuration[0].status == "Enabled" &&
      length(aws_ecs_task_definition.seed) == 1
    )
    error_message = "The bucket must be private and versioned, with a seed task."
  }
}

run "no_bucket_no_seed_task" {
  command = plan

  variables {
    create_s3_bucket = false
    tmp_init_image   = null
  }

  assert {
    condition     = length(aws_s3_bucket.config) == 0 && length(aws_ecs_task_definition.seed) == 0
    error_message = "Without create_s3_bucket there is neither bucket nor seed task."
  }

  assert {
    condition     = length(jsondecode(aws_ecs_task_definition.this.container_definitions)) == 1
    error_message = "Without tmp_init_image the task has the server container only."
  }
}

run "defaults_plan_alarms_waf_and_a_replaceable_target_group" {
  command = plan

  assert {
    condition = (
      length(aws_sns_topic.alarms) == 1 &&
      length(aws_cloudwatch_metric_alarm.alb_5xx_rate) == 1 &&
      length(aws_cloudwatch_metric_alarm.unhealthy_targets) == 1 &&
      length(aws_cloudwatch_metric_alarm.response_time_p99) == 1 &&
      length(aws_cloudwatch_metric_alarm.ecs_running_below_desired) == 1 &&
      length(aws_cloudwatch_metric_alarm.efs_burst_credits_low) == 1
    )
    error_message = "The defaults create the SNS topic and the five alarms."
  }

  assert {
    condition = (
      aws_cloudwatch_metric_alarm.unhealthy_targets[0].threshold == 0 &&
      aws_cloudwatch_metric_alarm.unhealthy_targets[0].comparison_operator == "GreaterThanThreshold" &&
      aws_cloudwatch_metric_alarm.response_time_p99[0].extended_statistic == "p99" &&
      aws_cloudwatch_metric_alarm.response_time_p99[0].threshold == 5 &&
      aws_cloudwatch_metric_alarm.alb_5xx_rate[0].threshold == 5
    )
    error_message = "Unhealthy > 0, p99 > 5 s, 5xx > 5 %."
  }

  assert {
    condition = (
      aws_lb_target_group.this.name_prefix == "postg-" &&
      length(aws_wafv2_web_acl.this) == 1 &&
      length(aws_wafv2_web_acl_association.this) == 1 &&
      [for r in aws_wafv2_web_acl.this[0].rule : r.statement[0].rate_based_statement[0].limit if length(r.statement[0].rate_based_statement) > 0] == [100, 6000]
    )
    error_message = "The target group is named by prefix; the web ACL limits /api/login to 100 and /mcp to 6000 per IP."
  }

  assert {
    condition     = length([for e in jsondecode(aws_ecs_task_definition.this.container_definitions)[1].environment : e if startswith(e.name, "PGMCP_TRACE_")]) == 0
    error_message = "Trace export is off by default: no PGMCP_TRACE_* variable."
  }
}

run "trace_export_sets_the_servers_variables_and_opens_the_collectors_port" {
  command = plan

  variables {
    trace_otlp_endpoint                = "http://otel-collector.internal:4318"
    trace_sample_ratio                 = 0.25
    trace_collector_cidrs              = ["10.0.20.0/24"]
    trace_collector_security_group_ids = ["sg-0ddddddddddddddd1"]
  }

  assert {
    condition = (
      { for e in jsondecode(aws_ecs_task_definition.this.container_definitions)[1].environment : e.name => e.value if startswith(e.name, "PGMCP_TRACE_") } == {
        PGMCP_TRACE_OTLP_ENDPOINT = "http://otel-collector.internal:4318"
        PGMCP_TRACE_SAMPLE_RATIO  = "0.25"
      }
    )
    error_message = "PGMCP_TRACE_OTLP_ENDPOINT and PGMCP_TRACE_SAMPLE_RATIO must be set, and nothing else of trace_*."
  }

  assert {
    condition = (
      aws_vpc_security_group_egress_rule.tasks_to_trace_collector_cidrs["10.0.20.0/24"].from_port == 4318 &&
      aws_vpc_security_group_egress_rule.tasks_to_trace_collector_groups[0].to_port == 4318
    )
    error_message = "The tasks must reach the collector on the endpoint's port."
  }
}

run "no_alarms_no_waf" {
  command = plan

  variables {
    create_alarms      = false
    create_waf_web_acl = false
  }

  assert {
    condition = (
      length(aws_sns_topic.alarms) == 0 && length(aws_cloudwatch_metric_alarm.alb_5xx_rate) == 0 &&
      length(aws_wafv2_web_acl.this) == 0 && length(aws_wafv2_web_acl_association.this) == 0
    )
    error_message = "create_alarms = false and create_waf_web_acl = false create neither."
  }
}

run "an_external_web_acl_next_to_the_modules_is_refused" {
  command = plan
  variables {
    waf_web_acl_arn = "arn:aws:wafv2:eu-west-1:123456789012:regional/webacl/mine/00000000-0000-0000-0000-000000000000"
  }
  expect_failures = [aws_wafv2_web_acl.this]
}

run "a_trace_endpoint_with_a_user_is_refused" {
  command = plan
  variables {
    trace_otlp_endpoint = "http://collector-user@otel-collector.internal:4318"
  }
  expect_failures = [var.trace_otlp_endpoint]
}

run "deregistration_shorter_than_the_drain_is_refused" {
  command = plan
  variables {
    deregistration_delay = 10
  }
  expect_failures = [aws_lb_target_group.this]
}

run "stop_timeout_shorter_than_the_drain_is_refused" {
  command = plan
  variables {
    stop_timeout = 20
  }
  expect_failures = [aws_ecs_task_definition.this]
}

run "memory_fargate_does_not_offer_is_refused" {
  command = plan
  variables {
    cpu    = 1024
    memory = 1024
  }
  expect_failures = [aws_ecs_task_definition.this]
}

run "counts_out_of_order_are_refused" {
  command = plan
  variables {
    min_capacity  = 3
    desired_count = 2
  }
  expect_failures = [aws_appautoscaling_target.this]
}

run "a_non_acm_certificate_is_refused" {
  command = plan
  variables {
    certificate_arn = "arn:aws:iam::123456789012:server-certificate/mine"
  }
  expect_failures = [var.certificate_arn]
}

run "tls12_only_policies_are_refused" {
  command = plan
  variables {
    ssl_policy = "ELBSecurityPolicy-2016-08"
  }
  expect_failures = [var.ssl_policy]
}
