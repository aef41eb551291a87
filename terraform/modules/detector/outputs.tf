output "asg_name" {
  value = module.service.asg_name
}

output "asg_arn" {
  value = module.service.asg_arn
}

output "role_arn" {
  value = module.service.role_arn
}

output "log_group_name" {
  value = module.service.log_group_name
}

output "security_group_id" {
  value = module.service.security_group_id
}
