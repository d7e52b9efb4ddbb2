# The ALB terminates TLS and spreads requests over the tasks with no stickiness: any task answers any
# request. Health checks follow the server's shutdown: GET /health is 200 while serving and 503 once
# SIGTERM arrived, and ECS deregisters a task (waiting deregistration_delay for its in-flight
# requests) before it sends that SIGTERM.

resource "aws_lb" "this" {
  #checkov:skip=CKV2_AWS_76:The module's web ACL has AWSManagedRulesKnownBadInputsRuleSet (which holds the Log4j rule); this check also wants AWSManagedRulesAnonymousIpList, whose hosting-provider list blocks the cloud hosts MCP clients (agents) often run on: add it with waf_managed_rule_groups when your clients are people.
  #checkov:skip=CKV_AWS_91:Access logging is optional (var.alb_access_logs): it needs a bucket whose policy lets ELB write, which is the caller's.
  name                       = var.name
  internal                   = var.internal
  load_balancer_type         = "application"
  security_groups            = [aws_security_group.alb.id]
  subnets                    = var.public_subnet_ids
  drop_invalid_header_fields = true
  desync_mitigation_mode     = "defensive"
  enable_deletion_protection = var.alb_deletion_protection
  enable_http2               = true
  idle_timeout               = var.alb_idle_timeout
  tags                       = local.tags

  dynamic "access_logs" {
    for_each = var.alb_access_logs == null ? [] : [var.alb_access_logs]
    content {
      enabled = true
      bucket  = access_logs.value.bucket
      prefix  = access_logs.value.prefix
    }
  }
}

resource "aws_lb_target_group" "this" {
  #checkov:skip=CKV_AWS_378:TLS ends at the ALB; ALB-to-task traffic is plain HTTP inside the VPC, on port 8080 reachable only from the ALB's security group.
  # A prefix, not a name, and created before the old one is destroyed: a change that replaces the
  # group (port, protocol, target type, VPC) then swaps the listener and the service over to the new
  # one instead of failing on a name in use, or on a group still attached to the listener.
  # name_prefix: at most 6 characters.
  name_prefix          = "${trimsuffix(substr(var.name, 0, 5), "-")}-"
  vpc_id               = var.vpc_id
  target_type          = "ip" # awsvpc: each task has its own ENI
  protocol             = "HTTP"
  protocol_version     = "HTTP1"
  port                 = local.container_port
  deregistration_delay = var.deregistration_delay
  tags                 = local.tags

  health_check {
    enabled             = true
    protocol            = "HTTP"
    port                = "traffic-port"
    path                = local.health_path
    matcher             = "200"
    interval            = var.health_check_interval
    timeout             = var.health_check_timeout
    healthy_threshold   = var.health_check_healthy_threshold
    unhealthy_threshold = var.health_check_unhealthy_threshold
  }

  lifecycle {
    create_before_destroy = true

    precondition {
      condition     = var.health_check_timeout < var.health_check_interval
      error_message = "health_check_timeout must be shorter than health_check_interval."
    }

    # A deployment or scale-in stops a task only after its deregistration: every request it accepted
    # before then must be able to finish, as the server itself would let it after SIGTERM.
    precondition {
      condition     = var.deregistration_delay >= var.shutdown_drain_delay_seconds + var.shutdown_grace_seconds
      error_message = "deregistration_delay must cover shutdown_drain_delay_seconds + shutdown_grace_seconds, or the ALB cuts requests the server would still finish."
    }
  }
}

resource "aws_lb_listener" "https" {
  load_balancer_arn = aws_lb.this.arn
  port              = 443
  protocol          = "HTTPS"
  ssl_policy        = var.ssl_policy
  certificate_arn   = var.certificate_arn
  tags              = local.tags

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.this.arn
  }
}

resource "aws_lb_listener" "http" {
  load_balancer_arn = aws_lb.this.arn
  port              = 80
  protocol          = "HTTP"
  tags              = local.tags

  default_action {
    type = "redirect"

    redirect {
      protocol    = "HTTPS"
      port        = "443"
      host        = "#{host}"
      path        = "/#{path}"
      query       = "#{query}"
      status_code = "HTTP_301"
    }
  }
}

# /health answers the status code and `{"status"}` only (the ALB checks 200 vs 503 and nothing
# else). The details (instance, file generations and errors, versions, database) are on the same port
# at /health/details, and GET /metrics is Prometheus text for operators: per-instance figures that say
# nothing useful to a client and too much to a stranger. The ALB answers both itself, before any
# forward rule, in the same JSON shape as the server's errors — as the kit's nginx and HAProxy do and
# the Helm chart's Ingress refuses to route. Read and scrape the tasks directly instead
# (metrics_ingress_security_group_ids).
resource "aws_lb_listener_rule" "block_metrics" {
  listener_arn = aws_lb_listener.https.arn
  priority     = 1
  tags         = local.tags

  action {
    type = "fixed-response"

    fixed_response {
      status_code  = "404"
      content_type = "application/json"
      message_body = jsonencode({ error = "not_found", message = "internal path: not served on the public listener" })
    }
  }

  condition {
    path_pattern {
      values = local.blocked_paths
    }
  }
}
