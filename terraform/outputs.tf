output "webhook_url" {
  description = "The URL Telegram delivers updates to (the gateway registers it itself at start)."
  value       = module.alb.webhook_url
}

output "queue_url" {
  value = module.storage.queue_url
}

output "dlq_url" {
  value = module.storage.dlq_url
}

output "bucket" {
  value = module.storage.bucket_name
}

output "table" {
  value = module.storage.table_name
}

output "telegram_secret_name" {
  description = "Put {\"telegram_token\":\"...\",\"webhook_secret\":\"...\",\"operator_token\":\"...\"} here with aws secretsmanager put-secret-value (docs/RUNBOOK.md, rotation)."
  value       = module.storage.secret_name
}

output "results_secret_name" {
  description = "Put {\"results_token\":\"...\"} here (and results_token_previous while rotating it: docs/RUNBOOK.md). The detectors read only this secret; the gateways read it before the Telegram secret's results fields."
  value       = module.storage.results_secret_name
}

output "ecr_repositories" {
  description = "Where the release workflow pushes the images for this region."
  value       = module.storage.repository_urls
}

output "results_url" {
  description = "Results gRPC inside the VPC."
  value       = module.gateway.results_url
}

output "gateway_asg_name" {
  value = module.gateway.asg_name
}

output "detector_asg_name" {
  value = module.detector.asg_name
}

output "reporter_asg_name" {
  value = module.reporter.asg_name
}

output "alarm_topic_arn" {
  value = module.monitoring.alarm_topic_arn
}

output "dashboard_name" {
  description = "The CloudWatch dashboard of this region."
  value       = module.monitoring.dashboard_name
}

output "dashboard_url" {
  value = module.monitoring.dashboard_url
}

output "gateway_instance_ids_command" {
  description = "Lists the gateway instances to port-forward to (operator_ssm_access; docs/RUNBOOK.md)."
  value       = "aws autoscaling describe-auto-scaling-groups --region ${local.region} --auto-scaling-group-names ${module.gateway.asg_name} --query 'AutoScalingGroups[0].Instances[?LifecycleState==`InService`].InstanceId' --output text"
}

output "webhook_target_group_arn" {
  description = "The gateways behind the webhook load balancer (aws elbv2 describe-target-health)."
  value       = module.alb.target_group_arn
}

output "results_target_group_arn" {
  description = "The gateways behind the internal Results load balancer."
  value       = module.gateway.results_target_group_arn
}
