################################################################################
# General
################################################################################

variable "name" {
  description = "Name of the deployment: the ALB, target group, ECS cluster and service, log group (/ecs/NAME) and the prefix of every other resource."
  type        = string
  default     = "postgres-mcp"

  validation {
    # 28 leaves room for the suffixes while staying under the 32 characters of ALB and target group names.
    condition     = can(regex("^[a-z][a-z0-9-]{0,26}[a-z0-9]$", var.name))
    error_message = "name must be 2-28 characters of lower-case letters, digits and hyphens, starting with a letter and not ending with a hyphen."
  }
}

variable "tags" {
  description = "Tags added to every resource that takes tags."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for k, v in var.tags : length(k) >= 1 && length(k) <= 128 && length(v) <= 256 && !startswith(lower(k), "aws:")])
    error_message = "tags keys must be 1-128 characters and not start with aws:, values at most 256 characters."
  }
}

################################################################################
# Network
################################################################################

variable "vpc_id" {
  description = "ID of the VPC that holds the subnets."
  type        = string

  validation {
    condition     = can(regex("^vpc-[0-9a-f]{8,17}$", var.vpc_id))
    error_message = "vpc_id must look like vpc-0123456789abcdef0."
  }
}

variable "public_subnet_ids" {
  description = "Subnets of the ALB, in at least two Availability Zones: public subnets, or private ones when internal = true."
  type        = list(string)

  validation {
    condition     = length(var.public_subnet_ids) >= 2 && alltrue([for s in var.public_subnet_ids : can(regex("^subnet-[0-9a-f]{8,17}$", s))])
    error_message = "public_subnet_ids needs at least two subnet IDs (subnet-...), one per Availability Zone."
  }
}

variable "private_subnet_ids" {
  description = "Private subnets of the tasks and of the EFS mount targets (one mount target per subnet: give one subnet per Availability Zone). At least two, so that losing a zone leaves instances serving."
  type        = list(string)

  validation {
    condition     = length(var.private_subnet_ids) >= 2 && alltrue([for s in var.private_subnet_ids : can(regex("^subnet-[0-9a-f]{8,17}$", s))])
    error_message = "private_subnet_ids needs at least two subnet IDs (subnet-...), one per Availability Zone."
  }
}

variable "internal" {
  description = "Create an internal ALB (reachable only from the VPC and its peers) instead of an internet-facing one."
  type        = bool
  default     = false
}

variable "allowed_ingress_cidrs" {
  description = "IPv4 CIDRs allowed to reach the ALB on 443 (and on 80, which only redirects to 443). No default: say who may connect, e.g. [\"0.0.0.0/0\"] for a public endpoint."
  type        = list(string)

  validation {
    condition     = length(var.allowed_ingress_cidrs) > 0 && alltrue([for c in var.allowed_ingress_cidrs : can(cidrhost(c, 0)) && !can(regex(":", c))])
    error_message = "allowed_ingress_cidrs needs at least one IPv4 CIDR such as 203.0.113.0/24."
  }
}

variable "trusted_proxy_cidrs" {
  description = "CIDRs whose X-Forwarded-For header the server believes (PGMCP_AUTH_TRUSTED_PROXIES): the ALB's addresses. null: the CIDRs of the ALB's subnets (public_subnet_ids)."
  type        = list(string)
  default     = null

  validation {
    condition     = var.trusted_proxy_cidrs == null ? true : alltrue([for c in var.trusted_proxy_cidrs : can(cidrhost(c, 0))])
    error_message = "trusted_proxy_cidrs must be a list of CIDRs."
  }
}

variable "database_cidr_blocks" {
  description = "IPv4 CIDRs of the PostgreSQL servers the tasks may connect to on database_port (egress). Empty with database_security_group_ids empty: the tasks cannot reach any database."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for c in var.database_cidr_blocks : can(cidrhost(c, 0)) && !can(regex(":", c))])
    error_message = "database_cidr_blocks must be IPv4 CIDRs."
  }
}

variable "database_security_group_ids" {
  description = "Security groups of the PostgreSQL servers (e.g. an RDS instance) the tasks may connect to on database_port (egress). Their own ingress rule for the task security group (output task_security_group_id) is yours to add."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for s in var.database_security_group_ids : can(regex("^sg-[0-9a-f]{8,17}$", s))])
    error_message = "database_security_group_ids must be security group IDs (sg-...)."
  }
}

variable "database_port" {
  description = "TCP port of PostgreSQL."
  type        = number
  default     = 5432

  validation {
    condition     = var.database_port >= 1 && var.database_port <= 65535 && floor(var.database_port) == var.database_port
    error_message = "database_port must be an integer between 1 and 65535."
  }
}

variable "metrics_ingress_security_group_ids" {
  description = "Security groups (e.g. a Prometheus server's) allowed to reach the tasks on 8080 to scrape GET /metrics per task; the ALB answers /metrics with 404. Empty: only the ALB reaches the tasks."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for s in var.metrics_ingress_security_group_ids : can(regex("^sg-[0-9a-f]{8,17}$", s))])
    error_message = "metrics_ingress_security_group_ids must be security group IDs (sg-...)."
  }
}

variable "https_egress_cidrs" {
  description = "IPv4 CIDRs the tasks may reach on 443: ECR (image layers come from S3), CloudWatch Logs, Secrets Manager/SSM and STS, through a NAT gateway (0.0.0.0/0) or interface VPC endpoints (the VPC CIDR). Empty: only https_egress_prefix_list_ids."
  type        = list(string)
  default     = ["0.0.0.0/0"]

  validation {
    condition     = alltrue([for c in var.https_egress_cidrs : can(cidrhost(c, 0)) && !can(regex(":", c))])
    error_message = "https_egress_cidrs must be IPv4 CIDRs."
  }
}

variable "https_egress_prefix_list_ids" {
  description = "Managed prefix lists the tasks may reach on 443, e.g. the S3 gateway endpoint's (pl-...) when there is no NAT gateway."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for p in var.https_egress_prefix_list_ids : can(regex("^pl-[0-9a-f]{8,17}$", p))])
    error_message = "https_egress_prefix_list_ids must be prefix list IDs (pl-...)."
  }
}

################################################################################
# Load balancer
################################################################################

variable "certificate_arn" {
  description = "ARN of the ACM certificate of the HTTPS listener (the host name of public_url)."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:acm:[a-z0-9-]+:[0-9]{12}:certificate/[0-9a-zA-Z-]+$", var.certificate_arn))
    error_message = "certificate_arn must be an ACM certificate ARN (arn:aws:acm:REGION:ACCOUNT:certificate/ID)."
  }
}

variable "ssl_policy" {
  description = "TLS policy of the HTTPS listener. Only TLS 1.3 policies are accepted (TLS 1.3 and 1.2 with forward-secret AEAD ciphers)."
  type        = string
  default     = "ELBSecurityPolicy-TLS13-1-2-2021-06"

  validation {
    condition     = can(regex("^ELBSecurityPolicy-TLS13-", var.ssl_policy))
    error_message = "ssl_policy must be one of the ELBSecurityPolicy-TLS13-* policies."
  }
}

variable "alb_deletion_protection" {
  description = "Protect the ALB from deletion (set false before `terraform destroy`)."
  type        = bool
  default     = true
}

variable "alb_idle_timeout" {
  description = "Seconds an idle connection stays open at the ALB. Above the server's http.request_timeout (30 s) so the server, not the ALB, ends slow requests; below the server's idle close of keep-alive connections (75 s) so the ALB, not the server, closes idle connections (a server-side close races the ALB's next request on it)."
  type        = number
  default     = 60

  validation {
    condition     = var.alb_idle_timeout >= 1 && var.alb_idle_timeout < 75
    error_message = "alb_idle_timeout must be between 1 and 74 seconds: the server closes keep-alive connections idle for 75 s, and the ALB must close them first."
  }
}

variable "alb_access_logs" {
  description = "Where the ALB writes access logs (an S3 bucket whose policy lets ELB write). null: no access logs."
  type = object({
    bucket = string
    prefix = optional(string)
  })
  default = null

  validation {
    condition     = var.alb_access_logs == null ? true : can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.alb_access_logs.bucket))
    error_message = "alb_access_logs.bucket must be an S3 bucket name."
  }
}

variable "waf_web_acl_arn" {
  description = "ARN of a regional WAFv2 web ACL of your own to associate with the ALB instead of the module's (create_waf_web_acl must then be false: an ALB has one web ACL). null: none, or the module's."
  type        = string
  default     = null

  validation {
    condition     = var.waf_web_acl_arn == null ? true : can(regex("^arn:aws[a-z-]*:wafv2:[a-z0-9-]+:[0-9]{12}:regional/webacl/.+$", var.waf_web_acl_arn))
    error_message = "waf_web_acl_arn must be a regional WAFv2 web ACL ARN."
  }
}

variable "create_waf_web_acl" {
  description = "Create a regional WAFv2 web ACL for the ALB with per-client-IP rate limits on POST /api/login (password guessing) and /mcp (a runaway client), each answered 429, then AWS's known-bad-inputs rule group and those in waf_managed_rule_groups. false: none, or your own (waf_web_acl_arn)."
  type        = bool
  default     = true
}

variable "waf_login_rate_limit" {
  description = "Requests to /api/login one client IP may send in waf_rate_window_seconds before WAF answers 429 until its rate falls back under the limit. The server's own failed-login limiter still applies behind it."
  type        = number
  default     = 100

  validation {
    condition     = var.waf_login_rate_limit >= 10 && var.waf_login_rate_limit <= 2000000000 && floor(var.waf_login_rate_limit) == var.waf_login_rate_limit
    error_message = "waf_login_rate_limit must be an integer of at least 10 (the WAF minimum)."
  }
}

variable "waf_mcp_rate_limit" {
  description = "Requests to /mcp (and /mcp/...) one client IP may send in waf_rate_window_seconds before WAF answers 429. Size it for your busiest legitimate client (an agent session sends a few calls a second); clients behind one NAT share a limit."
  type        = number
  default     = 6000

  validation {
    condition     = var.waf_mcp_rate_limit >= 10 && var.waf_mcp_rate_limit <= 2000000000 && floor(var.waf_mcp_rate_limit) == var.waf_mcp_rate_limit
    error_message = "waf_mcp_rate_limit must be an integer of at least 10 (the WAF minimum)."
  }
}

variable "waf_rate_window_seconds" {
  description = "Window over which WAF counts each client IP's requests for the rate limits (WAF accepts 60, 120, 300 and 600)."
  type        = number
  default     = 300

  validation {
    condition     = contains([60, 120, 300, 600], var.waf_rate_window_seconds)
    error_message = "waf_rate_window_seconds must be 60, 120, 300 or 600."
  }
}

variable "waf_managed_rule_groups" {
  description = "More AWS managed rule groups (vendor AWS) the module's web ACL evaluates after the rate limits and AWSManagedRulesKnownBadInputsRuleSet (always there), in this order, e.g. AWSManagedRulesAmazonIpReputationList. Each costs WCUs and a monthly fee."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for g in var.waf_managed_rule_groups : can(regex("^AWSManagedRules[A-Za-z0-9]+$", g)) && g != "AWSManagedRulesKnownBadInputsRuleSet"])
    error_message = "waf_managed_rule_groups must be AWS managed rule group names (AWSManagedRules...), other than AWSManagedRulesKnownBadInputsRuleSet (always in the web ACL)."
  }
}

################################################################################
# Target group and health check (GET /health: 200 serving, 503 draining)
################################################################################

variable "health_check_interval" {
  description = "Seconds between two health checks of a target."
  type        = number
  default     = 30

  validation {
    condition     = var.health_check_interval >= 5 && var.health_check_interval <= 300
    error_message = "health_check_interval must be between 5 and 300 seconds."
  }
}

variable "health_check_timeout" {
  description = "Seconds without a response after which a health check fails. Must be below health_check_interval."
  type        = number
  default     = 5

  validation {
    condition     = var.health_check_timeout >= 2 && var.health_check_timeout <= 120
    error_message = "health_check_timeout must be between 2 and 120 seconds."
  }
}

variable "health_check_healthy_threshold" {
  description = "Consecutive successful health checks before a target receives traffic."
  type        = number
  default     = 2

  validation {
    condition     = var.health_check_healthy_threshold >= 2 && var.health_check_healthy_threshold <= 10
    error_message = "health_check_healthy_threshold must be between 2 and 10."
  }
}

variable "health_check_unhealthy_threshold" {
  description = "Consecutive failed health checks before a target stops receiving traffic."
  type        = number
  default     = 3

  validation {
    condition     = var.health_check_unhealthy_threshold >= 2 && var.health_check_unhealthy_threshold <= 10
    error_message = "health_check_unhealthy_threshold must be between 2 and 10."
  }
}

variable "deregistration_delay" {
  description = "Seconds the ALB lets in-flight requests to a deregistered target finish before ECS sends SIGTERM. Default 30 = the server's drain_delay + grace (5 + 25), which also covers its 30 s request timeout."
  type        = number
  default     = 30

  validation {
    condition     = var.deregistration_delay >= 0 && var.deregistration_delay <= 3600
    error_message = "deregistration_delay must be between 0 and 3600 seconds."
  }
}

################################################################################
# Container and task
################################################################################

variable "image" {
  description = "The postgres-mcp image, e.g. 123456789012.dkr.ecr.eu-west-1.amazonaws.com/postgres-mcp:1.0.0 (pin a tag or a digest). An ECR image gets pull permission on its repository only."
  type        = string

  validation {
    condition     = length(var.image) > 0 && !can(regex("\\s", var.image))
    error_message = "image must be a non-empty image reference without spaces."
  }
}

variable "public_url" {
  description = "The URL clients use, e.g. https://mcp.example.com (PGMCP_PUBLIC_URL). Its host is accepted in the Host header of /mcp: without it every MCP request through the ALB is refused."
  type        = string

  validation {
    condition     = can(regex("^https?://[^/\\s]+", var.public_url))
    error_message = "public_url must be an absolute URL such as https://mcp.example.com."
  }
}

variable "cpu" {
  description = "Fargate task CPU units (1024 = 1 vCPU). Password logins run bcrypt (about 0.3 s of one core each), so keep at least 512 if users log in."
  type        = number
  default     = 512

  validation {
    condition     = contains([256, 512, 1024, 2048, 4096, 8192, 16384], var.cpu)
    error_message = "cpu must be one of 256, 512, 1024, 2048, 4096, 8192, 16384."
  }
}

variable "memory" {
  description = "Fargate task memory in MiB; must be a combination Fargate accepts with cpu (checked at plan time)."
  type        = number
  default     = 1024

  validation {
    condition     = var.memory >= 512 && var.memory <= 122880 && floor(var.memory) == var.memory
    error_message = "memory must be an integer between 512 and 122880 MiB."
  }
}

variable "cpu_architecture" {
  description = "CPU architecture of the tasks; the image must be built for it."
  type        = string
  default     = "X86_64"

  validation {
    condition     = contains(["X86_64", "ARM64"], var.cpu_architecture)
    error_message = "cpu_architecture must be X86_64 or ARM64."
  }
}

variable "ephemeral_storage_gib" {
  description = "Fargate ephemeral storage in GiB (21-200), which holds /tmp and so the local copy of kb.db. null: the Fargate default of 20 GiB."
  type        = number
  default     = null

  validation {
    condition     = var.ephemeral_storage_gib == null ? true : (var.ephemeral_storage_gib >= 21 && var.ephemeral_storage_gib <= 200)
    error_message = "ephemeral_storage_gib must be between 21 and 200, or null."
  }
}

variable "tmp_init_image" {
  description = "Image of the init container that gives the task's /tmp volume to uid 10001 (`chown`, run as root with CAP_CHOWN only) before the server starts: Fargate creates that volume owned by root, mode 0755, unless the image declares VOLUME /tmp. Needs a `chown` binary; pin a version and mirror it to ECR when the tasks have no route to public.ecr.aws. null: no init container (your image declares VOLUME /tmp owned by 10001)."
  type        = string
  default     = "public.ecr.aws/docker/library/busybox:1.36.1"

  validation {
    condition     = var.tmp_init_image == null ? true : can(regex("^\\S+$", var.tmp_init_image))
    error_message = "tmp_init_image must be a non-empty image reference without spaces, or null."
  }
}

variable "config_files" {
  description = "Which shared files on the EFS volume (/app/config) the server uses: tokens = tokens.yaml, users = users.yaml + session.key (POST /api/login), kb = kb.db. Every enabled file must exist before the tasks start: a missing one fails start-up."
  type = object({
    tokens = optional(bool, true)
    users  = optional(bool, true)
    kb     = optional(bool, true)
  })
  default = {}

  validation {
    condition     = var.config_files.tokens || var.config_files.users
    error_message = "config_files must enable tokens or users (or both): the server needs a way to authenticate."
  }
}

variable "log_level" {
  description = "The server's tracing filter (PGMCP_LOG_LEVEL), e.g. info or postgres_mcp=debug,info."
  type        = string
  default     = "info"

  validation {
    condition     = length(var.log_level) > 0 && !can(regex("\\s", var.log_level))
    error_message = "log_level must be a non-empty tracing filter without spaces."
  }
}

variable "environment" {
  description = "More environment variables of the container, e.g. { PGMCP_HTTP_ALLOWED_ORIGINS = \"https://app.example.com\" }. They win over the module's own. Unknown PGMCP_* names fail start-up."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for k in keys(var.environment) : can(regex("^[A-Z_][A-Z0-9_]*$", k))])
    error_message = "environment keys must be upper-case environment variable names."
  }
}

variable "database_url_secret_arn" {
  description = "ARN of a Secrets Manager secret (optionally with a JSON key suffix, ARN:key::) or an SSM SecureString parameter holding the PostgreSQL URL, injected as PGMCP_DATABASE_URL. null: no Postgres tools."
  type        = string
  default     = null

  validation {
    condition     = var.database_url_secret_arn == null ? true : can(regex("^arn:aws[a-z-]*:(secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:.+|ssm:[a-z0-9-]+:[0-9]{12}:parameter/.+)$", var.database_url_secret_arn))
    error_message = "database_url_secret_arn must be a Secrets Manager secret ARN or an SSM parameter ARN."
  }
}

variable "secrets" {
  description = "More secrets injected as environment variables: name => ARN of a Secrets Manager secret (optionally ARN:key::) or an SSM parameter. Only these ARNs are readable by the execution role."
  type        = map(string)
  default     = {}

  validation {
    condition = alltrue([
      for k, v in var.secrets : can(regex("^[A-Z_][A-Z0-9_]*$", k)) &&
      can(regex("^arn:aws[a-z-]*:(secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:.+|ssm:[a-z0-9-]+:[0-9]{12}:parameter/.+)$", v))
    ])
    error_message = "secrets must map upper-case variable names to Secrets Manager secret or SSM parameter ARNs."
  }
}

variable "secrets_kms_key_arns" {
  description = "Customer-managed KMS keys that encrypt the secrets above (the execution role gets kms:Decrypt on them). Empty for secrets under the AWS-managed key."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for k in var.secrets_kms_key_arns : can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/.+$", k))])
    error_message = "secrets_kms_key_arns must be KMS key ARNs."
  }
}

################################################################################
# Service, shutdown and scaling
################################################################################

variable "desired_count" {
  description = "Tasks started with the service. Afterwards auto scaling owns the count (Terraform ignores its drift). min_capacity <= desired_count <= max_capacity."
  type        = number
  default     = 2

  validation {
    condition     = var.desired_count >= 0 && floor(var.desired_count) == var.desired_count
    error_message = "desired_count must be a non-negative integer."
  }
}

variable "min_capacity" {
  description = "Fewest tasks auto scaling keeps. Two or more keeps serving through the loss of a task or a zone."
  type        = number
  default     = 2

  validation {
    condition     = var.min_capacity >= 0 && floor(var.min_capacity) == var.min_capacity
    error_message = "min_capacity must be a non-negative integer."
  }
}

variable "max_capacity" {
  description = "Most tasks auto scaling starts."
  type        = number
  default     = 6

  validation {
    condition     = var.max_capacity >= 1 && var.max_capacity <= 1000 && floor(var.max_capacity) == var.max_capacity
    error_message = "max_capacity must be an integer between 1 and 1000."
  }
}

variable "cpu_target_value" {
  description = "Average CPU utilization (percent) the target-tracking policy keeps the service at."
  type        = number
  default     = 70

  validation {
    condition     = var.cpu_target_value >= 10 && var.cpu_target_value <= 95
    error_message = "cpu_target_value must be between 10 and 95 percent."
  }
}

variable "scale_out_cooldown" {
  description = "Seconds after a scale-out before the next one."
  type        = number
  default     = 60

  validation {
    condition     = var.scale_out_cooldown >= 0 && var.scale_out_cooldown <= 3600
    error_message = "scale_out_cooldown must be between 0 and 3600 seconds."
  }
}

variable "scale_in_cooldown" {
  description = "Seconds after a scale-in before the next one."
  type        = number
  default     = 300

  validation {
    condition     = var.scale_in_cooldown >= 0 && var.scale_in_cooldown <= 3600
    error_message = "scale_in_cooldown must be between 0 and 3600 seconds."
  }
}

variable "health_check_grace_period" {
  description = "Seconds ECS ignores failing ALB health checks of a new task (start-up copies kb.db to /tmp)."
  type        = number
  default     = 60

  validation {
    condition     = var.health_check_grace_period >= 0 && var.health_check_grace_period <= 1800
    error_message = "health_check_grace_period must be between 0 and 1800 seconds."
  }
}

variable "shutdown_drain_delay_seconds" {
  description = "After SIGTERM, seconds /health answers 503 while requests are still served (PGMCP_SHUTDOWN_DRAIN_DELAY)."
  type        = number
  default     = 5

  validation {
    condition     = var.shutdown_drain_delay_seconds >= 0 && var.shutdown_drain_delay_seconds <= 60 && floor(var.shutdown_drain_delay_seconds) == var.shutdown_drain_delay_seconds
    error_message = "shutdown_drain_delay_seconds must be an integer between 0 and 60."
  }
}

variable "shutdown_grace_seconds" {
  description = "Then, seconds in-flight requests may take to finish before the process exits (PGMCP_SHUTDOWN_GRACE)."
  type        = number
  default     = 25

  validation {
    condition     = var.shutdown_grace_seconds >= 1 && var.shutdown_grace_seconds <= 110 && floor(var.shutdown_grace_seconds) == var.shutdown_grace_seconds
    error_message = "shutdown_grace_seconds must be an integer between 1 and 110."
  }
}

variable "stop_timeout" {
  description = "Seconds ECS waits after SIGTERM before SIGKILL (container stopTimeout, at most 120 on Fargate). Must cover shutdown_drain_delay_seconds + shutdown_grace_seconds; the default adds a 5 s margin."
  type        = number
  default     = 35

  validation {
    condition     = var.stop_timeout >= 2 && var.stop_timeout <= 120 && floor(var.stop_timeout) == var.stop_timeout
    error_message = "stop_timeout must be an integer between 2 and 120 (the Fargate maximum)."
  }
}

variable "platform_version" {
  description = "Fargate platform version (EFS volumes need 1.4.0 or later, which LATEST is)."
  type        = string
  default     = "LATEST"

  validation {
    condition     = var.platform_version == "LATEST" || can(regex("^1\\.4\\.[0-9]+$", var.platform_version))
    error_message = "platform_version must be LATEST or 1.4.x."
  }
}

variable "container_insights" {
  description = "CloudWatch Container Insights of the cluster: enabled, enhanced or disabled."
  type        = string
  default     = "enabled"

  validation {
    condition     = contains(["enabled", "enhanced", "disabled"], var.container_insights)
    error_message = "container_insights must be enabled, enhanced or disabled."
  }
}

variable "wait_for_steady_state" {
  description = "Make `terraform apply` wait until the service is stable (fails the apply when tasks crash-loop or cannot start, e.g. before the EFS is seeded, instead of reporting success while the circuit breaker rolls back). The example sets true.."
  type        = bool
  default     = false
}

################################################################################
# Traces (OpenTelemetry over OTLP/HTTP; off unless trace_otlp_endpoint is set)
################################################################################

variable "trace_otlp_endpoint" {
  description = "OTLP/HTTP base URL of an OpenTelemetry collector the server exports spans to (PGMCP_TRACE_OTLP_ENDPOINT), e.g. http://otel-collector.internal:4318; spans go to <endpoint>/v1/traces. Its port is opened in the tasks' egress towards trace_collector_cidrs and trace_collector_security_group_ids. null: no export (log lines still carry trace.id)."
  type        = string
  default     = null

  validation {
    condition     = var.trace_otlp_endpoint == null ? true : can(regex("^https?://[^/@\\s:]+(:[0-9]{1,5})?(/\\S*)?$", var.trace_otlp_endpoint))
    error_message = "trace_otlp_endpoint must be an http:// or https:// URL with a host and no user:password@, e.g. http://otel-collector.internal:4318."
  }
}

variable "trace_sample_ratio" {
  description = "Share of new traces exported, 0.0 to 1.0 (PGMCP_TRACE_SAMPLE_RATIO); a request with a traceparent follows its caller's sampled flag. null: the server's default (1.0)."
  type        = number
  default     = null

  validation {
    condition     = var.trace_sample_ratio == null ? true : (var.trace_sample_ratio >= 0 && var.trace_sample_ratio <= 1)
    error_message = "trace_sample_ratio must be between 0.0 and 1.0, or null."
  }
}

variable "trace_service_name" {
  description = "service.name of the exported spans (PGMCP_TRACE_SERVICE_NAME). null: the server's default (postgres-mcp)."
  type        = string
  default     = null

  validation {
    condition     = var.trace_service_name == null ? true : length(trimspace(var.trace_service_name)) > 0
    error_message = "trace_service_name must not be empty (null for the server's default)."
  }
}

variable "trace_collector_cidrs" {
  description = "IPv4 CIDRs of the collector at trace_otlp_endpoint: the tasks may reach them on its port (egress). Empty with trace_collector_security_group_ids empty: export is blocked by the security group."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for c in var.trace_collector_cidrs : can(cidrhost(c, 0)) && !can(regex(":", c))])
    error_message = "trace_collector_cidrs must be IPv4 CIDRs."
  }
}

variable "trace_collector_security_group_ids" {
  description = "Security groups of the collector at trace_otlp_endpoint: the tasks may reach them on its port (egress); their own ingress rule for the task security group is yours to add."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for s in var.trace_collector_security_group_ids : can(regex("^sg-[0-9a-f]{8,17}$", s))])
    error_message = "trace_collector_security_group_ids must be security group IDs (sg-...)."
  }
}

################################################################################
# Alarms (CloudWatch, to an SNS topic)
################################################################################

variable "create_alarms" {
  description = "Create the CloudWatch alarms: ALB 5xx rate, unhealthy targets, target response time p99, ECS running < desired (needs Container Insights), EFS burst credits low (bursting mode). They notify alarm_sns_topic_arn, or a topic the module creates."
  type        = bool
  default     = true
}

variable "alarm_sns_topic_arn" {
  description = "SNS topic the alarms notify (ALARM and OK), e.g. one your paging tool subscribes to. null: the module creates one (output alarm_sns_topic_arn) and subscribes alarm_email_addresses to it."
  type        = string
  default     = null

  validation {
    condition     = var.alarm_sns_topic_arn == null ? true : can(regex("^arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]{1,256}$", var.alarm_sns_topic_arn))
    error_message = "alarm_sns_topic_arn must be an SNS topic ARN."
  }
}

variable "alarm_sns_kms_key_arn" {
  description = "Customer-managed KMS key that encrypts the module's alarm topic; its key policy must let cloudwatch.amazonaws.com use it (kms:Decrypt, kms:GenerateDataKey*). null: no SSE (CloudWatch cannot publish to a topic under the AWS-managed aws/sns key, and alarm messages hold no secrets)."
  type        = string
  default     = null

  validation {
    condition     = var.alarm_sns_kms_key_arn == null ? true : can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/.+$", var.alarm_sns_kms_key_arn))
    error_message = "alarm_sns_kms_key_arn must be a KMS key ARN."
  }
}

variable "alarm_email_addresses" {
  description = "E-mail addresses subscribed to the module's alarm topic (each must confirm the subscription). Ignored with alarm_sns_topic_arn."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for e in var.alarm_email_addresses : can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", e))])
    error_message = "alarm_email_addresses must be e-mail addresses."
  }
}

variable "alarm_period_seconds" {
  description = "Period of every alarm's metric, in seconds (ALB and EFS metrics are per minute)."
  type        = number
  default     = 60

  validation {
    condition     = contains([60, 300, 900, 3600], var.alarm_period_seconds)
    error_message = "alarm_period_seconds must be 60, 300, 900 or 3600."
  }
}

variable "alarm_evaluation_periods" {
  description = "Consecutive breaching periods before an alarm fires (the EFS alarm uses the same count)."
  type        = number
  default     = 3

  validation {
    condition     = var.alarm_evaluation_periods >= 1 && var.alarm_evaluation_periods <= 100 && floor(var.alarm_evaluation_periods) == var.alarm_evaluation_periods
    error_message = "alarm_evaluation_periods must be an integer between 1 and 100."
  }
}

variable "alarm_5xx_rate_percent" {
  description = "The 5xx alarm fires when 5xx responses (the targets' plus the ALB's own, e.g. 502/503 with no healthy target) exceed this share of requests, in percent, over a period."
  type        = number
  default     = 5

  validation {
    condition     = var.alarm_5xx_rate_percent > 0 && var.alarm_5xx_rate_percent <= 100
    error_message = "alarm_5xx_rate_percent must be above 0 and at most 100."
  }
}

variable "alarm_5xx_min_requests" {
  description = "Periods with fewer requests than this never count as breaching for the 5xx rate (one failed request out of three is not an outage)."
  type        = number
  default     = 20

  validation {
    condition     = var.alarm_5xx_min_requests >= 0 && floor(var.alarm_5xx_min_requests) == var.alarm_5xx_min_requests
    error_message = "alarm_5xx_min_requests must be a non-negative integer."
  }
}

variable "alarm_response_time_p99_seconds" {
  description = "The latency alarm fires when the targets' 99th percentile response time exceeds this, in seconds. The server ends requests at its http.request_timeout (30 s); a tools/call against PostgreSQL usually takes milliseconds."
  type        = number
  default     = 5

  validation {
    condition     = var.alarm_response_time_p99_seconds > 0 && var.alarm_response_time_p99_seconds <= 60
    error_message = "alarm_response_time_p99_seconds must be above 0 and at most 60."
  }
}

variable "alarm_efs_burst_credit_balance_bytes" {
  description = "The EFS alarm fires when the file system's burst credit balance falls below this many bytes (bursting mode only). A new file system starts with about 2.1 TiB of credits; a small one earns few back, so a steady drain means reads above its baseline throughput. Default 1 TiB."
  type        = number
  default     = 1099511627776

  validation {
    condition     = var.alarm_efs_burst_credit_balance_bytes > 0
    error_message = "alarm_efs_burst_credit_balance_bytes must be above 0."
  }
}

################################################################################
# Logs
################################################################################

variable "log_retention_days" {
  description = "Days CloudWatch keeps the container logs (0: forever)."
  type        = number
  default     = 90

  validation {
    condition     = contains([0, 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a value CloudWatch Logs accepts (0, 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653)."
  }
}

variable "log_kms_key_arn" {
  description = "KMS key that encrypts the log group (its key policy must allow the logs.REGION.amazonaws.com service). null: CloudWatch's default encryption."
  type        = string
  default     = null

  validation {
    condition     = var.log_kms_key_arn == null ? true : can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/.+$", var.log_kms_key_arn))
    error_message = "log_kms_key_arn must be a KMS key ARN."
  }
}

################################################################################
# EFS (the shared, read-only configuration volume)
################################################################################

variable "efs_kms_key_arn" {
  description = "KMS key that encrypts the file system at rest. null: the AWS-managed key aws/elasticfilesystem (still encrypted)."
  type        = string
  default     = null

  validation {
    condition     = var.efs_kms_key_arn == null ? true : can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/.+$", var.efs_kms_key_arn))
    error_message = "efs_kms_key_arn must be a KMS key ARN."
  }
}

variable "efs_throughput_mode" {
  description = "EFS throughput mode: bursting (plenty for a few small files), elastic or provisioned."
  type        = string
  default     = "bursting"

  validation {
    condition     = contains(["bursting", "elastic", "provisioned"], var.efs_throughput_mode)
    error_message = "efs_throughput_mode must be bursting, elastic or provisioned."
  }
}

variable "efs_provisioned_throughput_mibps" {
  description = "Provisioned throughput in MiB/s, used only when efs_throughput_mode = provisioned."
  type        = number
  default     = null

  validation {
    condition     = var.efs_provisioned_throughput_mibps == null ? true : var.efs_provisioned_throughput_mibps >= 1
    error_message = "efs_provisioned_throughput_mibps must be at least 1."
  }
}

variable "efs_transition_to_ia" {
  description = "Lifecycle policy: move files not read for this long to Infrequent Access (they return to Standard on the next access). null: no lifecycle policy."
  type        = string
  default     = "AFTER_30_DAYS"

  validation {
    condition     = var.efs_transition_to_ia == null ? true : contains(["AFTER_1_DAY", "AFTER_7_DAYS", "AFTER_14_DAYS", "AFTER_30_DAYS", "AFTER_60_DAYS", "AFTER_90_DAYS", "AFTER_180_DAYS", "AFTER_270_DAYS", "AFTER_365_DAYS"], var.efs_transition_to_ia)
    error_message = "efs_transition_to_ia must be one of AFTER_1_DAY, AFTER_7_DAYS, AFTER_14_DAYS, AFTER_30_DAYS, AFTER_60_DAYS, AFTER_90_DAYS, AFTER_180_DAYS, AFTER_270_DAYS, AFTER_365_DAYS, or null."
  }
}

variable "efs_backup" {
  description = "Enable automatic AWS Backup of the file system (the EFS backup policy: daily, kept 35 days)."
  type        = bool
  default     = true
}

variable "efs_client_security_group_ids" {
  description = "More security groups allowed to mount the file system on 2049, e.g. an EC2 instance used to seed it. Writing also needs a role in efs_writer_role_arns."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for s in var.efs_client_security_group_ids : can(regex("^sg-[0-9a-f]{8,17}$", s))])
    error_message = "efs_client_security_group_ids must be security group IDs (sg-...)."
  }
}

variable "efs_writer_role_arns" {
  description = "IAM roles allowed to mount the access point read-write (ClientWrite) to seed or update the shared files, e.g. an EC2 instance role. The seed task's role is added when it exists."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for r in var.efs_writer_role_arns : can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/.+$", r))])
    error_message = "efs_writer_role_arns must be IAM role ARNs."
  }
}

################################################################################
# S3 (optional: the object-storage pattern)
################################################################################

variable "create_s3_bucket" {
  description = "Create a versioned, private S3 bucket that holds the source copy of the shared files (tokens.yaml, users.yaml, session.key, kb.db under s3_config_prefix), plus a seed task that copies them onto the EFS volume."
  type        = bool
  default     = false
}

variable "s3_bucket_name" {
  description = "Name of the bucket. null: a unique name starting with NAME-config-."
  type        = string
  default     = null

  validation {
    condition     = var.s3_bucket_name == null ? true : can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.s3_bucket_name))
    error_message = "s3_bucket_name must be a valid S3 bucket name."
  }
}

variable "s3_config_prefix" {
  description = "Key prefix of the shared files in the bucket (ends with /)."
  type        = string
  default     = "config/"

  validation {
    condition     = can(regex("^[A-Za-z0-9!_.*'()-][A-Za-z0-9!_.*'()/-]*/$", var.s3_config_prefix))
    error_message = "s3_config_prefix must be a key prefix ending with /, e.g. config/."
  }
}

variable "s3_kms_key_arn" {
  description = "Customer-managed KMS key for SSE-KMS on the bucket (the task and seed roles get kms:Decrypt on it). null: SSE-KMS with the AWS-managed key aws/s3."
  type        = string
  default     = null

  validation {
    condition     = var.s3_kms_key_arn == null ? true : can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/.+$", var.s3_kms_key_arn))
    error_message = "s3_kms_key_arn must be a KMS key ARN."
  }
}

variable "s3_noncurrent_version_expiration_days" {
  description = "Days old versions of the shared files are kept (for rollback) before they expire."
  type        = number
  default     = 90

  validation {
    condition     = var.s3_noncurrent_version_expiration_days >= 1
    error_message = "s3_noncurrent_version_expiration_days must be at least 1."
  }
}

variable "s3_access_logs" {
  description = "Server access logging of the bucket: target bucket and prefix. null: none."
  type = object({
    bucket = string
    prefix = optional(string, "postgres-mcp-config/")
  })
  default = null

  validation {
    condition     = var.s3_access_logs == null ? true : can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.s3_access_logs.bucket))
    error_message = "s3_access_logs.bucket must be an S3 bucket name."
  }
}

variable "s3_force_destroy" {
  description = "Let `terraform destroy` delete the bucket with its objects and versions."
  type        = bool
  default     = false
}

variable "grant_task_s3_read" {
  description = "With create_s3_bucket, let the server's task role list and read the bucket's config prefix (the object-storage pattern: a `postgres-mcp sync` sidecar, or any reader in the task). false: only the seed task reads the bucket."
  type        = bool
  default     = true
}

variable "seed_image" {
  description = "Image of the seed task (AWS CLI v2: its entrypoint is `aws`). Pin a version; mirror it to ECR when the tasks have no route to public.ecr.aws."
  type        = string
  default     = "public.ecr.aws/aws-cli/aws-cli:2.27.0"

  validation {
    condition     = length(var.seed_image) > 0 && !can(regex("\\s", var.seed_image))
    error_message = "seed_image must be a non-empty image reference without spaces."
  }
}
