output "alb_dns_name" {
  description = "DNS name of the ALB: point the public_url host at it (CNAME, or an alias record with alb_zone_id)."
  value       = aws_lb.this.dns_name
}

output "alb_zone_id" {
  description = "Route 53 hosted zone ID of the ALB, for an alias record."
  value       = aws_lb.this.zone_id
}

output "alb_arn" {
  description = "ARN of the ALB."
  value       = aws_lb.this.arn
}

output "target_group_arn" {
  description = "ARN of the target group (ip targets on 8080, health check GET /health)."
  value       = aws_lb_target_group.this.arn
}

output "https_listener_arn" {
  description = "ARN of the HTTPS listener, to add certificates or rules."
  value       = aws_lb_listener.https.arn
}

output "cluster_name" {
  description = "Name of the ECS cluster."
  value       = aws_ecs_cluster.this.name
}

output "service_name" {
  description = "Name of the ECS service."
  value       = aws_ecs_service.this.name
}

output "task_definition_arn" {
  description = "ARN of the service's task definition (this revision)."
  value       = aws_ecs_task_definition.this.arn
}

output "task_role_arn" {
  description = "ARN of the server's task role."
  value       = aws_iam_role.task.arn
}

output "execution_role_arn" {
  description = "ARN of the task execution role."
  value       = aws_iam_role.execution.arn
}

output "task_security_group_id" {
  description = "Security group of the tasks: allow it on your PostgreSQL's port in the database's own security group."
  value       = aws_security_group.tasks.id
}

output "alb_security_group_id" {
  description = "Security group of the ALB."
  value       = aws_security_group.alb.id
}

output "efs_security_group_id" {
  description = "Security group of the EFS mount targets."
  value       = aws_security_group.efs.id
}

output "efs_file_system_id" {
  description = "ID of the EFS file system holding the shared files."
  value       = aws_efs_file_system.this.id
}

output "efs_access_point_id" {
  description = "ID of the EFS access point (/postgres-mcp as 10001:10001) through which every client mounts."
  value       = aws_efs_access_point.this.id
}

output "efs_mount_command" {
  description = "Mount command for a seeding EC2 instance (amazon-efs-utils; its role in efs_writer_role_arns, its security group in efs_client_security_group_ids)."
  value       = "sudo mount -t efs -o tls,iam,accesspoint=${aws_efs_access_point.this.id} ${aws_efs_file_system.this.id}:/ /mnt/postgres-mcp"
}

output "s3_bucket_name" {
  description = "Name of the configuration bucket, or null without create_s3_bucket."
  value       = var.create_s3_bucket ? aws_s3_bucket.config[0].id : null
}

output "s3_config_uri" {
  description = "Where to upload tokens.yaml, users.yaml, session.key and kb.db, or null without create_s3_bucket."
  value       = var.create_s3_bucket ? "s3://${aws_s3_bucket.config[0].id}/${var.s3_config_prefix}" : null
}

output "seed_task_definition_arn" {
  description = "ARN of the seed task definition, or null without create_s3_bucket."
  value       = local.create_seed_task ? aws_ecs_task_definition.seed[0].arn : null
}

output "seed_command" {
  description = "AWS CLI command that runs the seed task once (copies the bucket's files onto the volume), or null without create_s3_bucket."
  value = local.create_seed_task ? join(" ", [
    "aws ecs run-task --region ${local.region}",
    "--cluster ${aws_ecs_cluster.this.name}",
    "--task-definition ${aws_ecs_task_definition.seed[0].family}",
    "--launch-type FARGATE",
    "--network-configuration 'awsvpcConfiguration={subnets=[${join(",", var.private_subnet_ids)}],securityGroups=[${aws_security_group.tasks.id}],assignPublicIp=DISABLED}'",
  ]) : null
}

output "log_group_name" {
  description = "CloudWatch log group of the containers (streams serve/... and seed/...)."
  value       = aws_cloudwatch_log_group.this.name
}

output "target_group_name" {
  description = "Name of the target group (name_prefix + a unique suffix: a replacement is created before the old one goes)."
  value       = aws_lb_target_group.this.name
}

output "waf_web_acl_arn" {
  description = "ARN of the web ACL associated with the ALB (the module's or waf_web_acl_arn), or null without one; add aws_wafv2_web_acl_logging_configuration on it for WAF logs."
  value       = local.waf_web_acl_arn
}

output "alarm_sns_topic_arn" {
  description = "SNS topic the alarms notify (alarm_sns_topic_arn, or the one the module created), or null without create_alarms: subscribe your pager to it."
  value       = local.alarm_topic_arn
}

output "alarm_names" {
  description = "Names of the CloudWatch alarms, by what they watch (alb_5xx_rate, unhealthy_targets, response_time_p99, ecs_running_below_desired, efs_burst_credits_low); those not created are absent."
  value = merge(
    { for k, a in aws_cloudwatch_metric_alarm.alb_5xx_rate : "alb_5xx_rate" => a.alarm_name },
    { for k, a in aws_cloudwatch_metric_alarm.unhealthy_targets : "unhealthy_targets" => a.alarm_name },
    { for k, a in aws_cloudwatch_metric_alarm.response_time_p99 : "response_time_p99" => a.alarm_name },
    { for k, a in aws_cloudwatch_metric_alarm.ecs_running_below_desired : "ecs_running_below_desired" => a.alarm_name },
    { for k, a in aws_cloudwatch_metric_alarm.efs_burst_credits_low : "efs_burst_credits_low" => a.alarm_name },
  )
}
