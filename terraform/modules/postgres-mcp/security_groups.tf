# Least privilege between the three tiers:
#
#   clients --443/80--> ALB --8080--> tasks --2049--> EFS
#   (metrics_ingress_*) --8080------> tasks            (Prometheus scrapes /metrics per task)
#                                       |--443------> ECR, CloudWatch Logs, Secrets Manager/SSM, S3
#                                       |             (NAT gateway or VPC endpoints: https_egress_*)
#                                       |--5432-----> PostgreSQL (database_*; none by default)
#                                       '--4318-----> OTLP trace collector (trace_*; only with trace_otlp_endpoint)
#
# Every rule is its own resource (aws_vpc_security_group_*_rule), so rules can be added without
# replacing a group and the groups can reference each other without a dependency cycle.

resource "aws_security_group" "alb" {
  name_prefix = "${var.name}-alb-"
  description = "postgres-mcp ALB: HTTPS (and HTTP redirect) from allowed CIDRs, 8080 to the tasks"
  vpc_id      = var.vpc_id
  tags        = merge(local.tags, { Name = "${var.name}-alb" })

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_ingress_rule" "alb_https" {
  for_each = toset(var.allowed_ingress_cidrs)

  security_group_id = aws_security_group.alb.id
  description       = "HTTPS from an allowed client range"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = each.value
  tags              = local.tags
}

resource "aws_vpc_security_group_ingress_rule" "alb_http" {
  #checkov:skip=CKV_AWS_260:Port 80 only answers 301 to HTTPS (listener http_redirect); it is open to the same ranges as 443.
  for_each = toset(var.allowed_ingress_cidrs)

  security_group_id = aws_security_group.alb.id
  description       = "HTTP from an allowed client range (redirected to HTTPS)"
  ip_protocol       = "tcp"
  from_port         = 80
  to_port           = 80
  cidr_ipv4         = each.value
  tags              = local.tags
}

resource "aws_vpc_security_group_egress_rule" "alb_to_tasks" {
  security_group_id            = aws_security_group.alb.id
  description                  = "Requests and health checks to the tasks"
  ip_protocol                  = "tcp"
  from_port                    = local.container_port
  to_port                      = local.container_port
  referenced_security_group_id = aws_security_group.tasks.id
  tags                         = local.tags
}

resource "aws_security_group" "tasks" {
  name_prefix = "${var.name}-tasks-"
  description = "postgres-mcp tasks: 8080 from the ALB only; egress to EFS, HTTPS endpoints and PostgreSQL"
  vpc_id      = var.vpc_id
  tags        = merge(local.tags, { Name = "${var.name}-tasks" })

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_ingress_rule" "tasks_from_alb" {
  security_group_id            = aws_security_group.tasks.id
  description                  = "HTTP from the ALB only"
  ip_protocol                  = "tcp"
  from_port                    = local.container_port
  to_port                      = local.container_port
  referenced_security_group_id = aws_security_group.alb.id
  tags                         = local.tags
}

resource "aws_vpc_security_group_ingress_rule" "tasks_from_metrics_scrapers" {
  # count, not for_each: the IDs may be unknown until the scraper's group is created.
  count = length(var.metrics_ingress_security_group_ids)

  security_group_id            = aws_security_group.tasks.id
  description                  = "Prometheus scrape of GET /metrics, per task"
  ip_protocol                  = "tcp"
  from_port                    = local.container_port
  to_port                      = local.container_port
  referenced_security_group_id = var.metrics_ingress_security_group_ids[count.index]
  tags                         = local.tags
}

resource "aws_vpc_security_group_egress_rule" "tasks_to_efs" {
  security_group_id            = aws_security_group.tasks.id
  description                  = "NFS to the EFS mount targets"
  ip_protocol                  = "tcp"
  from_port                    = 2049
  to_port                      = 2049
  referenced_security_group_id = aws_security_group.efs.id
  tags                         = local.tags
}

resource "aws_vpc_security_group_egress_rule" "tasks_https" {
  for_each = toset(var.https_egress_cidrs)

  security_group_id = aws_security_group.tasks.id
  description       = "HTTPS to ECR, CloudWatch Logs, Secrets Manager/SSM, S3 (NAT or VPC endpoints)"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = each.value
  tags              = local.tags
}

resource "aws_vpc_security_group_egress_rule" "tasks_https_prefix_lists" {
  count = length(var.https_egress_prefix_list_ids)

  security_group_id = aws_security_group.tasks.id
  description       = "HTTPS to a managed prefix list (e.g. the S3 gateway endpoint)"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  prefix_list_id    = var.https_egress_prefix_list_ids[count.index]
  tags              = local.tags
}

resource "aws_vpc_security_group_egress_rule" "tasks_to_database_cidrs" {
  for_each = toset(var.database_cidr_blocks)

  security_group_id = aws_security_group.tasks.id
  description       = "PostgreSQL"
  ip_protocol       = "tcp"
  from_port         = var.database_port
  to_port           = var.database_port
  cidr_ipv4         = each.value
  tags              = local.tags
}

resource "aws_vpc_security_group_egress_rule" "tasks_to_database_groups" {
  # count, not for_each: the IDs may be unknown until the database's group is created.
  count = length(var.database_security_group_ids)

  security_group_id            = aws_security_group.tasks.id
  description                  = "PostgreSQL"
  ip_protocol                  = "tcp"
  from_port                    = var.database_port
  to_port                      = var.database_port
  referenced_security_group_id = var.database_security_group_ids[count.index]
  tags                         = local.tags
}

resource "aws_vpc_security_group_egress_rule" "tasks_to_trace_collector_cidrs" {
  for_each = local.trace_port == null ? toset([]) : toset(var.trace_collector_cidrs)

  security_group_id = aws_security_group.tasks.id
  description       = "OTLP/HTTP spans to the trace collector"
  ip_protocol       = "tcp"
  from_port         = local.trace_port
  to_port           = local.trace_port
  cidr_ipv4         = each.value
  tags              = local.tags
}

resource "aws_vpc_security_group_egress_rule" "tasks_to_trace_collector_groups" {
  # count, not for_each: the IDs may be unknown until the collector's group is created.
  count = local.trace_port == null ? 0 : length(var.trace_collector_security_group_ids)

  security_group_id            = aws_security_group.tasks.id
  description                  = "OTLP/HTTP spans to the trace collector"
  ip_protocol                  = "tcp"
  from_port                    = local.trace_port
  to_port                      = local.trace_port
  referenced_security_group_id = var.trace_collector_security_group_ids[count.index]
  tags                         = local.tags
}

resource "aws_security_group" "efs" {
  # No egress rule: Terraform removes the default allow-all, and NFS replies are stateful.
  name_prefix = "${var.name}-efs-"
  description = "postgres-mcp EFS mount targets: NFS from the tasks (and listed seeding clients) only"
  vpc_id      = var.vpc_id
  tags        = merge(local.tags, { Name = "${var.name}-efs" })

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_ingress_rule" "efs_from_tasks" {
  security_group_id            = aws_security_group.efs.id
  description                  = "NFS from the postgres-mcp tasks (and the seed task)"
  ip_protocol                  = "tcp"
  from_port                    = 2049
  to_port                      = 2049
  referenced_security_group_id = aws_security_group.tasks.id
  tags                         = local.tags
}

resource "aws_vpc_security_group_ingress_rule" "efs_from_clients" {
  count = length(var.efs_client_security_group_ids)

  security_group_id            = aws_security_group.efs.id
  description                  = "NFS from a listed client (seeding)"
  ip_protocol                  = "tcp"
  from_port                    = 2049
  to_port                      = 2049
  referenced_security_group_id = var.efs_client_security_group_ids[count.index]
  tags                         = local.tags
}
