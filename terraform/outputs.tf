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
  description = "Put {\"telegram_token\":\"...\",\"webhook_secret\":\"...\",\"results_token\":\"...\",\"operator_token\":\"...\"} here with aws secretsmanager put-secret-value (and results_token_previous while rotating the results token: see the README)."
  value       = module.storage.secret_name
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
