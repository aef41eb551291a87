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

output "results_lb_arn_suffix" {
  description = "The internal Results load balancer's CloudWatch dimension value (LoadBalancer)."
  value       = aws_lb.results.arn_suffix
}

output "results_target_group_arn_suffix" {
  description = "The Results target group's CloudWatch dimension value (TargetGroup)."
  value       = aws_lb_target_group.results.arn_suffix
}

output "role_name" {
  value = module.service.role_name
}

output "ssm_endpoint_ids" {
  description = "The Session Manager interface endpoints (empty unless operator_ssm_access and operator_ssm_endpoints)."
  value       = { for k, e in aws_vpc_endpoint.ssm : k => e.id }
}

output "results_target_group_arn" {
  value = aws_lb_target_group.results.arn
}
