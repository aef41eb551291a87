variable "name" {
  description = "Full name of this service's resources, e.g. polybot-gateway (also the Auto Scaling Group name)."
  type        = string
}

variable "service" {
  description = "Service name: gateway, detector or reporter (container name and tag)."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets the instances run in (two availability zones)."
  type        = list(string)
}

variable "vpc_id" {
  type = string
}

variable "instance_type" {
  type = string
}

variable "ami_ssm_parameter" {
  description = "Public SSM parameter holding the AMI id (Amazon Linux 2023), so no AMI id is hard-coded."
  type        = string
}

variable "root_volume_size" {
  description = "Root volume size in GiB (the container image lives there)."
  type        = number
  default     = 20
}

variable "image" {
  description = "Full container image reference (repository URL and tag)."
  type        = string
}

variable "ecr_repository_arn" {
  description = "Repository the instances may pull from."
  type        = string
}

variable "command" {
  description = "Arguments after the image's entrypoint, e.g. [\"worker\"]."
  type        = list(string)
  default     = []
}

variable "environment" {
  description = "Container environment (no secrets: those come from Secrets Manager at run time)."
  type        = map(string)
}

variable "policy_json" {
  description = "IAM policy with what this service itself calls (pulling its image and writing its logs are added here)."
  type        = string
}

variable "min_size" {
  type = number
}

variable "max_size" {
  type = number
}

variable "target_group_arns" {
  type    = list(string)
  default = []
}

variable "health_check_type" {
  description = "EC2, or ELB when the instances are load-balancer targets."
  type        = string
  default     = "EC2"
}

variable "health_check_grace_period" {
  type    = number
  default = 300
}

variable "instance_warmup" {
  description = "Seconds before a new instance counts in the group's metrics and instance refreshes move on."
  type        = number
  default     = 180
}

variable "stop_timeout" {
  description = "Seconds between SIGTERM and SIGKILL when the container stops."
  type        = number
  default     = 30
}

variable "drain_on_terminate" {
  description = "Add a termination lifecycle hook; the instance stops its container (SIGTERM, stop_timeout) before termination continues."
  type        = bool
  default     = false
}

variable "report_unhealthy" {
  description = "Watch the container's Docker HEALTHCHECK and mark the instance Unhealthy in its Auto Scaling Group (which replaces it) when the container stays unhealthy or down for unhealthy_after checks. For groups that no load balancer health-checks."
  type        = bool
  default     = false
}

variable "unhealthy_after" {
  description = "Consecutive failed 30-second checks (after health_check_grace_period) before the instance reports itself unhealthy."
  type        = number
  default     = 6
}

variable "kms_key_arn" {
  description = "KMS key for the log group."
  type        = string
}

variable "log_retention_days" {
  type    = number
  default = 365
}

variable "tags" {
  type    = map(string)
  default = {}
}

variable "open_https_egress" {
  description = "Allow HTTPS out to any address (package repositories, the Telegram Bot API through NAT). False: no such rule; the caller adds the narrower egress its service needs."
  type        = bool
  default     = true
}

variable "managed_policy_arns" {
  description = "AWS managed policies attached to the instance role besides its own inline policy (e.g. AmazonSSMManagedInstanceCore for operator access)."
  type        = list(string)
  default     = []
}
