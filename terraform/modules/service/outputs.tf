output "asg_name" {
  value = aws_autoscaling_group.this.name
}

output "asg_arn" {
  value = aws_autoscaling_group.this.arn
}

output "role_name" {
  value = aws_iam_role.this.name
}

output "role_arn" {
  value = aws_iam_role.this.arn
}

output "log_group_name" {
  value = aws_cloudwatch_log_group.this.name
}

output "launch_template_id" {
  value = aws_launch_template.this.id
}

output "security_group_id" {
  description = "The instances' security group (HTTPS out only); callers add their own rules to it."
  value       = aws_security_group.this.id
}
