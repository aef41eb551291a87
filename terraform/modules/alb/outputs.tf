output "security_group_id" {
  value = aws_security_group.alb.id
}

output "target_group_arn" {
  value = aws_lb_target_group.gateway.arn
}

output "dns_name" {
  value = aws_lb.this.dns_name
}

output "webhook_url" {
  value = "https://${var.domain_name}${var.webhook_path}"
}

output "public_url" {
  description = "Base URL the gateway registers its webhook under."
  value       = "https://${var.domain_name}"
}

output "arn_suffix" {
  description = "The load balancer's CloudWatch dimension value (LoadBalancer)."
  value       = aws_lb.this.arn_suffix
}

output "target_group_arn_suffix" {
  description = "The gateway target group's CloudWatch dimension value (TargetGroup)."
  value       = aws_lb_target_group.gateway.arn_suffix
}
