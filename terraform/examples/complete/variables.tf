variable "region" {
  description = "AWS region to deploy to."
  type        = string
  default     = "eu-west-1"
}

variable "name" {
  description = "Name of the deployment (prefix of every resource)."
  type        = string
  default     = "postgres-mcp"
}

variable "domain_name" {
  description = "Host name clients use, e.g. mcp.example.com; the certificate must cover it."
  type        = string
}

variable "route53_zone_id" {
  description = "Public hosted zone of domain_name, for an alias record to the ALB. null: create the DNS record yourself (output alb_dns_name)."
  type        = string
  default     = null
}

variable "vpc_id" {
  description = "VPC to deploy into."
  type        = string
}

variable "public_subnet_ids" {
  description = "Public subnets of the ALB (two or more Availability Zones)."
  type        = list(string)
}

variable "private_subnet_ids" {
  description = "Private subnets of the tasks and EFS mount targets, one per Availability Zone, with a NAT gateway or VPC endpoints for ECR, Logs and S3."
  type        = list(string)
}

variable "certificate_arn" {
  description = "ACM certificate for domain_name, in the same region."
  type        = string
}

variable "image" {
  description = "The postgres-mcp image in your registry, e.g. 123456789012.dkr.ecr.eu-west-1.amazonaws.com/postgres-mcp:1.0.0."
  type        = string
}

variable "allowed_ingress_cidrs" {
  description = "Client ranges allowed to reach the ALB."
  type        = list(string)
  default     = ["0.0.0.0/0"]
}

variable "min_capacity" {
  description = "Fewest tasks (also the initial count). 0 for the first apply, before the shared files are on the volume; then 2 or more."
  type        = number
  default     = 2
}

variable "database_url_secret_arn" {
  description = "ARN of the Secrets Manager secret whose value is the PostgreSQL connection URL (scheme postgres, with user, password, host, port and database), for the reader role made by deploy/sql/reader-role.sql. null: no Postgres tools."
  type        = string
  default     = null
}

variable "database_security_group_ids" {
  description = "Security groups of the PostgreSQL servers the tasks may reach on 5432."
  type        = list(string)
  default     = []
}

variable "alb_deletion_protection" {
  description = "Protect the ALB from deletion; set false and apply before `terraform destroy`."
  type        = bool
  default     = true
}

variable "wait_for_steady_state" {
  description = "Make `terraform apply` wait until the service is stable, and fail when its tasks cannot start."
  type        = bool
  default     = true
}

variable "alarm_email_addresses" {
  description = "E-mail addresses subscribed to the alarm topic."
  type        = list(string)
  default     = []
}

variable "waf_login_rate_limit" {
  description = "Requests to /api/login per client IP per 5 minutes before WAF answers 429."
  type        = number
  default     = 100
}

variable "waf_mcp_rate_limit" {
  description = "Requests to /mcp per client IP per 5 minutes before WAF answers 429."
  type        = number
  default     = 6000
}

variable "trace_otlp_endpoint" {
  description = "OTLP/HTTP collector the server exports spans to, e.g. http://otel-collector.internal:4318. null: no export."
  type        = string
  default     = null
}

variable "trace_collector_security_group_ids" {
  description = "Security groups of that collector (the tasks may reach them on its port)."
  type        = list(string)
  default     = []
}

variable "tags" {
  description = "Tags of every resource (provider default_tags)."
  type        = map(string)
  default = {
    Project   = "postgres-mcp"
    ManagedBy = "terraform"
  }
}
