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
