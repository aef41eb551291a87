output "kms_key_arn" {
  description = "Customer managed KMS key for data at rest (bucket, table, secret, logs, alarm topic)."
  value       = aws_kms_key.this.arn
}

output "bucket_name" {
  value = aws_s3_bucket.images.bucket
}

output "bucket_arn" {
  value = aws_s3_bucket.images.arn
}

output "logs_bucket_name" {
  value = aws_s3_bucket.logs.bucket
}

output "queue_url" {
  value = aws_sqs_queue.jobs.url
}

output "queue_arn" {
  value = aws_sqs_queue.jobs.arn
}

output "queue_name" {
  value = aws_sqs_queue.jobs.name
}

output "dlq_url" {
  value = aws_sqs_queue.dlq.url
}

output "dlq_arn" {
  value = aws_sqs_queue.dlq.arn
}

output "dlq_name" {
  value = aws_sqs_queue.dlq.name
}

output "table_name" {
  value = aws_dynamodb_table.predictions.name
}

output "table_arn" {
  value = aws_dynamodb_table.predictions.arn
}

output "secret_arn" {
  value = aws_secretsmanager_secret.telegram.arn
}

output "secret_name" {
  value = aws_secretsmanager_secret.telegram.name
}

output "results_secret_arn" {
  value = aws_secretsmanager_secret.results.arn
}

output "results_secret_name" {
  value = aws_secretsmanager_secret.results.name
}

output "repository_urls" {
  description = "ECR repository URL per service."
  value       = { for k, r in aws_ecr_repository.service : k => r.repository_url }
}

output "repository_arns" {
  description = "ECR repository ARN per service."
  value       = { for k, r in aws_ecr_repository.service : k => r.arn }
}
