# postgres-mcp behind an internet-facing ALB in an existing VPC, with the object-storage pattern:
# upload the shared files to the bucket, run the seed task, and every task serves them.

module "postgres_mcp" {
  source = "../../modules/postgres-mcp"

  name       = var.name
  image      = var.image
  public_url = "https://${var.domain_name}"

  vpc_id                = var.vpc_id
  public_subnet_ids     = var.public_subnet_ids
  private_subnet_ids    = var.private_subnet_ids
  allowed_ingress_cidrs = var.allowed_ingress_cidrs
  certificate_arn       = var.certificate_arn

  # Tokens, users (POST /api/login) and a knowledge base, all from the EFS volume.
  config_files = {
    tokens = true
    users  = true
    kb     = true
  }

  database_url_secret_arn     = var.database_url_secret_arn
  database_security_group_ids = var.database_security_group_ids

  cpu    = 512
  memory = 1024

  # min_capacity is 0 for the first apply (no task can start before the shared files are on the
  # volume), then 2 or more: updating the scalable target brings the service into the new range.
  desired_count = var.min_capacity
  min_capacity  = var.min_capacity
  max_capacity  = 6

  create_s3_bucket = true

  # Set false and apply before `terraform destroy`.
  alb_deletion_protection = var.alb_deletion_protection

  # An apply fails when the tasks cannot become healthy (crash loop, image not found, files not yet
  # on the volume) instead of reporting success while the circuit breaker rolls back.
  wait_for_steady_state = var.wait_for_steady_state

  # Alarms go to a topic the module creates; these addresses are subscribed (each confirms by mail).
  alarm_email_addresses = var.alarm_email_addresses

  # The module's web ACL rate-limits /api/login and /mcp per client IP (defaults 100 and 6000 per 5 min).
  waf_login_rate_limit = var.waf_login_rate_limit
  waf_mcp_rate_limit   = var.waf_mcp_rate_limit

  trace_otlp_endpoint                = var.trace_otlp_endpoint
  trace_collector_security_group_ids = var.trace_collector_security_group_ids
}

resource "aws_route53_record" "this" {
  count = var.route53_zone_id == null ? 0 : 1

  zone_id = var.route53_zone_id
  name    = var.domain_name
  type    = "A"

  alias {
    name                   = module.postgres_mcp.alb_dns_name
    zone_id                = module.postgres_mcp.alb_zone_id
    evaluate_target_health = true
  }
}
