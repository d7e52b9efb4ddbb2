# The service: N identical Fargate tasks, each one postgres-mcp container that runs as 10001:10001 on
# a read-only root filesystem without capabilities, reads the shared files from the EFS access point
# (read-only) and keeps its private copy of kb.db in /tmp (a task-level ephemeral volume).
#
# Fargate creates such a volume owned by root, mode 0755, unless the image declares VOLUME at that
# path: uid 10001 could not write to it. So a non-essential init container (tmp_init_image, root
# with CAP_CHOWN only) hands /tmp to 10001:10001 and exits; the server starts after it succeeded.
#
# Shutdown, in order (the numbers are the defaults):
#   1. ECS deregisters the task from the target group; the ALB sends it no new request and lets
#      in-flight ones finish for up to deregistration_delay (30 s);
#   2. ECS sends SIGTERM: /health turns 503 for drain_delay (5 s), then in-flight requests get grace
#      (25 s) before the process exits;
#   3. ECS sends SIGKILL after stop_timeout (35 s = 5 + 25 + 5 of margin).
# Step 2 matters when a task is stopped by other means than a deployment or a scale-in (the ALB then
# sees the 503 and stops routing to it).

locals {
  environment = merge(
    {
      PGMCP_PUBLIC_URL           = var.public_url
      PGMCP_LOG_FORMAT           = "json"
      PGMCP_LOG_LEVEL            = var.log_level
      PGMCP_WATCH_MODE           = "poll" # EFS: inotify does not see other clients' writes
      PGMCP_AUTH_TRUSTED_PROXIES = join(",", local.trusted_proxy_cidrs)
      PGMCP_SHUTDOWN_DRAIN_DELAY = "${var.shutdown_drain_delay_seconds}s"
      PGMCP_SHUTDOWN_GRACE       = "${var.shutdown_grace_seconds}s"
    },
    var.config_files.tokens ? {
      PGMCP_AUTH_TOKENS_FILE = "${local.config_path}/tokens.yaml"
    } : {},
    var.config_files.users ? {
      PGMCP_AUTH_USERS_FILE          = "${local.config_path}/users.yaml"
      PGMCP_AUTH_SESSION_SECRET_FILE = "${local.config_path}/session.key"
    } : {},
    var.config_files.kb ? {
      PGMCP_KB_PATH = "${local.config_path}/kb.db"
    } : {},
    # Traces: only what is set, so the server's own defaults apply to the rest.
    var.trace_otlp_endpoint == null ? {} : { PGMCP_TRACE_OTLP_ENDPOINT = var.trace_otlp_endpoint },
    var.trace_sample_ratio == null ? {} : { PGMCP_TRACE_SAMPLE_RATIO = tostring(var.trace_sample_ratio) },
    var.trace_service_name == null ? {} : { PGMCP_TRACE_SERVICE_NAME = var.trace_service_name },
    var.environment,
  )

  log_options = {
    "awslogs-group"  = aws_cloudwatch_log_group.this.name
    "awslogs-region" = local.region
    # A stalled log pipeline must not stall requests: buffer, and drop past the buffer.
    "mode"            = "non-blocking"
    "max-buffer-size" = "25m"
  }

  # Fargate's default capabilities, less CHOWN: everything the init container does not need.
  capabilities_but_chown = [
    "AUDIT_WRITE", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD", "NET_BIND_SERVICE", "NET_RAW",
    "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT",
  ]

  tmp_init_container = {
    name                   = "tmp-init"
    image                  = var.tmp_init_image
    essential              = false
    command                = ["chown", "${local.run_as}:${local.run_as}", "/tmp"]
    user                   = "0:0"
    readonlyRootFilesystem = true
    mountPoints            = [{ sourceVolume = "tmp", containerPath = "/tmp", readOnly = false }]
    linuxParameters        = { capabilities = { drop = local.capabilities_but_chown } }
    logConfiguration = {
      logDriver = "awslogs"
      options   = merge(local.log_options, { "awslogs-stream-prefix" = "init" })
    }
  }

  # The containers that need /tmp start once it is theirs.
  tmp_depends_on = var.tmp_init_image == null ? [] : [{ containerName = "tmp-init", condition = "SUCCESS" }]

  container_definition = {
    name                   = local.container_name
    image                  = var.image
    essential              = true
    entryPoint             = ["/usr/local/bin/postgres-mcp"]
    command                = ["serve"]
    user                   = "${local.run_as}:${local.run_as}"
    readonlyRootFilesystem = true
    stopTimeout            = var.stop_timeout
    dependsOn              = local.tmp_depends_on
    linuxParameters        = { capabilities = { drop = ["ALL"] } }

    portMappings = [{
      name          = "http"
      containerPort = local.container_port
      hostPort      = local.container_port
      protocol      = "tcp"
      appProtocol   = "http"
    }]

    environment = [for k in sort(keys(local.environment)) : { name = k, value = local.environment[k] }]
    secrets     = [for k in sort(keys(local.secrets)) : { name = k, valueFrom = local.secrets[k] }]

    mountPoints = [
      { sourceVolume = "config", containerPath = local.config_path, readOnly = true },
      { sourceVolume = "tmp", containerPath = "/tmp", readOnly = false },
    ]

    # The image has no shell or curl: the binary probes itself (`postgres-mcp healthcheck`). ECS
    # replaces a task whose essential container turns unhealthy, so this asks the liveness question:
    # /livez fails only when the server's runtime stalled, never while it drains after SIGTERM. Which
    # task gets traffic is the target group's health check (alb.tf, /health), not this one.
    healthCheck = {
      command     = ["CMD", "/usr/local/bin/postgres-mcp", "healthcheck", "--path", "/livez"]
      interval    = 15
      timeout     = 5
      retries     = 3
      startPeriod = min(var.health_check_grace_period, 300)
    }

    ulimits = [{ name = "nofile", softLimit = 65536, hardLimit = 65536 }]

    logConfiguration = {
      logDriver = "awslogs"
      options   = merge(local.log_options, { "awslogs-stream-prefix" = "serve" })
    }
  }
}

resource "aws_ecs_cluster" "this" {
  #checkov:skip=CKV_AWS_223:ECS Exec is not enabled on the service (the image has no shell), so there is no Exec session to log.
  name = var.name
  tags = local.tags

  setting {
    name  = "containerInsights"
    value = var.container_insights
  }
}

resource "aws_ecs_task_definition" "this" {
  family                   = var.name
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.cpu
  memory                   = var.memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.task.arn
  container_definitions    = jsonencode(concat(var.tmp_init_image == null ? [] : [local.tmp_init_container], [local.container_definition]))
  tags                     = local.tags

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = var.cpu_architecture
  }

  dynamic "ephemeral_storage" {
    for_each = var.ephemeral_storage_gib == null ? [] : [var.ephemeral_storage_gib]
    content {
      size_in_gib = ephemeral_storage.value
    }
  }

  volume {
    name = "config"

    efs_volume_configuration {
      file_system_id     = aws_efs_file_system.this.id
      transit_encryption = "ENABLED"

      authorization_config {
        access_point_id = aws_efs_access_point.this.id
        iam             = "ENABLED"
      }
    }
  }

  # No host path and no EFS: a task-level ephemeral volume, the writable /tmp.
  volume {
    name = "tmp"
  }

  lifecycle {
    precondition {
      condition = (
        var.memory >= local.fargate_memory_range[tostring(var.cpu)][0] &&
        var.memory <= local.fargate_memory_range[tostring(var.cpu)][1]
      )
      error_message = "memory is outside what Fargate accepts for this cpu (256: 512-2048, 512: 1024-4096, 1024: 2048-8192, 2048: 4096-16384, 4096: 8192-30720, 8192: 16384-61440, 16384: 32768-122880)."
    }

    precondition {
      condition     = var.stop_timeout >= var.shutdown_drain_delay_seconds + var.shutdown_grace_seconds
      error_message = "stop_timeout must cover shutdown_drain_delay_seconds + shutdown_grace_seconds, or in-flight requests are killed."
    }
  }
}

resource "aws_ecs_service" "this" {
  name                               = var.name
  cluster                            = aws_ecs_cluster.this.id
  task_definition                    = aws_ecs_task_definition.this.arn
  desired_count                      = var.desired_count
  launch_type                        = "FARGATE"
  platform_version                   = var.platform_version
  health_check_grace_period_seconds  = var.health_check_grace_period
  deployment_minimum_healthy_percent = 100 # never fewer healthy tasks than desired during a deployment
  deployment_maximum_percent         = 200 # start all new tasks first, then drain the old ones
  enable_ecs_managed_tags            = true
  propagate_tags                     = "SERVICE"
  wait_for_steady_state              = var.wait_for_steady_state
  tags                               = local.tags

  deployment_controller {
    type = "ECS"
  }

  # A task definition whose tasks never become healthy is rolled back to the last good one.
  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  network_configuration {
    subnets          = var.private_subnet_ids
    security_groups  = [aws_security_group.tasks.id]
    assign_public_ip = false
  }

  load_balancer {
    target_group_arn = aws_lb_target_group.this.arn
    container_name   = local.container_name
    container_port   = local.container_port
  }

  lifecycle {
    # Auto scaling owns the count after creation.
    ignore_changes = [desired_count]
  }

  # The target group must belong to a listener, the mount targets must exist for the EFS volume, and
  # the roles need their policies before the first task starts.
  depends_on = [
    aws_lb_listener.https,
    aws_efs_mount_target.this,
    aws_iam_role_policy.execution,
    aws_iam_role_policy.task,
  ]
}

################################################################################
# Auto scaling: CPU target tracking (the server holds no state, so any count is as good as another)
################################################################################

resource "aws_appautoscaling_target" "this" {
  service_namespace  = "ecs"
  resource_id        = "service/${aws_ecs_cluster.this.name}/${aws_ecs_service.this.name}"
  scalable_dimension = "ecs:service:DesiredCount"
  min_capacity       = var.min_capacity
  max_capacity       = var.max_capacity
  tags               = local.tags

  lifecycle {
    precondition {
      condition     = var.min_capacity <= var.desired_count && var.desired_count <= var.max_capacity
      error_message = "The counts must satisfy min_capacity <= desired_count <= max_capacity."
    }
  }
}

resource "aws_appautoscaling_policy" "cpu" {
  name               = "${var.name}-cpu"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.this.service_namespace
  resource_id        = aws_appautoscaling_target.this.resource_id
  scalable_dimension = aws_appautoscaling_target.this.scalable_dimension

  target_tracking_scaling_policy_configuration {
    target_value       = var.cpu_target_value
    scale_in_cooldown  = var.scale_in_cooldown
    scale_out_cooldown = var.scale_out_cooldown

    predefined_metric_specification {
      predefined_metric_type = "ECSServiceAverageCPUUtilization"
    }
  }
}

################################################################################
# Seed task (with the bucket): `aws s3 sync` of the config prefix onto the access point, read-write.
# Run it on demand (output seed_command); the servers pick the new files up by polling. The AWS CLI
# downloads each file to a temporary name and renames it, so a server never reads half a file.
################################################################################

resource "aws_ecs_task_definition" "seed" {
  count = local.create_seed_task ? 1 : 0

  family                   = "${var.name}-seed"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = 256
  memory                   = 512
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.seed[0].arn
  tags                     = local.tags

  container_definitions = jsonencode(concat(var.tmp_init_image == null ? [] : [local.tmp_init_container], [{
    name                   = "seed"
    image                  = var.seed_image
    essential              = true
    user                   = "${local.run_as}:${local.run_as}"
    readonlyRootFilesystem = true
    dependsOn              = local.tmp_depends_on
    linuxParameters        = { capabilities = { drop = ["ALL"] } }
    command = [
      "s3", "sync", "--only-show-errors", "--exact-timestamps",
      "s3://${aws_s3_bucket.config[0].id}/${var.s3_config_prefix}", "${local.config_path}/",
    ]
    environment = [
      { name = "AWS_REGION", value = local.region },
      { name = "HOME", value = "/tmp" }, # the CLI's own files, off the read-only root
    ]
    mountPoints = [
      { sourceVolume = "config", containerPath = local.config_path, readOnly = false },
      { sourceVolume = "tmp", containerPath = "/tmp", readOnly = false },
    ]
    logConfiguration = {
      logDriver = "awslogs"
      options   = merge(local.log_options, { "awslogs-stream-prefix" = "seed" })
    }
  }]))

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }

  volume {
    name = "config"

    efs_volume_configuration {
      file_system_id     = aws_efs_file_system.this.id
      transit_encryption = "ENABLED"

      authorization_config {
        access_point_id = aws_efs_access_point.this.id
        iam             = "ENABLED"
      }
    }
  }

  volume {
    name = "tmp"
  }
}
