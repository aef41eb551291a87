output "asg_name" {
  value = module.service.asg_name
}

output "role_arn" {
  value = module.service.role_arn
}

output "log_group_name" {
  value = module.service.log_group_name
}
