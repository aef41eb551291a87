output "asg_name" {
  value = module.service.asg_name
}

output "security_group_id" {
  value = module.service.security_group_id
}

output "results_url" {
  description = "gRPC URL of the Results service inside the VPC (for the detector)."
  value       = "http://${aws_route53_record.results.fqdn}:${var.grpc_port}"
}

output "role_arn" {
  value = module.service.role_arn
}

output "log_group_name" {
  value = module.service.log_group_name
}
