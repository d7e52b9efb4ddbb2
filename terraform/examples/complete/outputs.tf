output "url" {
  description = "MCP endpoint for clients."
  value       = "https://${var.domain_name}/mcp"
}

output "alb_dns_name" {
  description = "DNS name of the ALB (CNAME target when route53_zone_id is null)."
  value       = module.postgres_mcp.alb_dns_name
}

output "s3_config_uri" {
  description = "Upload tokens.yaml, users.yaml, session.key and kb.db here."
  value       = module.postgres_mcp.s3_config_uri
}

output "seed_command" {
  description = "Copies the uploaded files onto the EFS volume."
  value       = module.postgres_mcp.seed_command
}

output "efs_file_system_id" {
  description = "EFS file system of the shared files."
  value       = module.postgres_mcp.efs_file_system_id
}

output "efs_access_point_id" {
  description = "EFS access point every client mounts through."
  value       = module.postgres_mcp.efs_access_point_id
}

output "cluster_name" {
  description = "ECS cluster."
  value       = module.postgres_mcp.cluster_name
}

output "service_name" {
  description = "ECS service."
  value       = module.postgres_mcp.service_name
}

output "log_group_name" {
  description = "CloudWatch log group of the containers."
  value       = module.postgres_mcp.log_group_name
}

output "alarm_sns_topic_arn" {
  description = "SNS topic of the alarms: subscribe your pager to it."
  value       = module.postgres_mcp.alarm_sns_topic_arn
}

output "waf_web_acl_arn" {
  description = "The ALB's web ACL."
  value       = module.postgres_mcp.waf_web_acl_arn
}
