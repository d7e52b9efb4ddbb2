# postgres-mcp on ECS Fargate behind an ALB.
#
# The server is stateless: any task answers any request, so the ALB has no stickiness and the
# service scales on CPU alone. The only shared state is a handful of read-only files (tokens.yaml,
# users.yaml, session.key, kb.db) on one EFS access point that every task mounts read-only. A file
# per concern: alb.tf, ecs.tf, efs.tf, s3.tf, iam.tf, logs.tf, security_groups.tf.

data "aws_region" "current" {}
data "aws_partition" "current" {}
data "aws_caller_identity" "current" {}

# The subnets the ALB lives in: its nodes take their addresses from these, and only from these.
# count, not for_each: the subnet IDs may be unknown until a VPC created in the same apply exists.
data "aws_subnet" "alb" {
  count = length(var.public_subnet_ids)
  id    = var.public_subnet_ids[count.index]
}

locals {
  # The container contract (server/Dockerfile): fixed, not inputs.
  container_name = "postgres-mcp"
  container_port = 8080
  run_as         = 10001
  config_path    = "/app/config"
  health_path    = "/health"

  # Answered 404 by the ALB itself (alb.tf): operator-only routes.
  blocked_paths = ["/metrics", "/metrics/*", "/health/details", "/health/details/*"]

  # `name` is what 5.x has; 6.x adds `region` and deprecates `name` (still served, with a warning).
  region     = data.aws_region.current.name
  partition  = data.aws_partition.current.partition
  account_id = data.aws_caller_identity.current.account_id

  tags = var.tags

  # The server believes X-Forwarded-For only from the ALB (its failed-auth limiter keys on the client
  # address): the ALB's subnets, not the whole VPC, where any task or instance could claim to be a
  # proxy and pick the address its failures count against. The ALB is IPv4-only (no dualstack).
  trusted_proxy_cidrs = var.trusted_proxy_cidrs != null ? var.trusted_proxy_cidrs : distinct(
    [for subnet in data.aws_subnet.alb : subnet.cidr_block]
  )

  # Fargate's accepted memory range per CPU size (MiB).
  fargate_memory_range = {
    "256"   = [512, 2048]
    "512"   = [1024, 4096]
    "1024"  = [2048, 8192]
    "2048"  = [4096, 16384]
    "4096"  = [8192, 30720]
    "8192"  = [16384, 61440]
    "16384" = [32768, 122880]
  }

  # The collector's port, from trace_otlp_endpoint (the scheme's default when it names none), for
  # the tasks' egress rules: 4318 in the usual http://collector:4318.
  trace_port = var.trace_otlp_endpoint == null ? null : tonumber(coalesce(
    one(regexall("^https?://[^/:]+:([0-9]+)", var.trace_otlp_endpoint)[*][0]),
    startswith(var.trace_otlp_endpoint, "https://") ? "443" : "80",
  ))

  # The seed task copies the bucket's files onto the volume: it exists with the bucket.
  create_seed_task = var.create_s3_bucket
}
