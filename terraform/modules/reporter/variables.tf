variable "name" {
  description = "Name prefix (the group is <name>-reporter)."
  type        = string
}

variable "vpc_id" {
  type = string
}

variable "private_subnet_ids" {
  type = list(string)
}

variable "instance_type" {
  type = string
}

variable "detector_asg_name" {
  description = "Auto Scaling Group whose in-service instances divide the backlog."
  type        = string
}

variable "report_interval" {
  description = "Seconds between publications (POLYBOT_REPORT_INTERVAL)."
  type        = number
  default     = 30
}

variable "metric_namespace" {
  type = string
}

variable "no_instance_backlog" {
  description = "Value published when messages wait and no detector is in service (POLYBOT_NO_INSTANCE_BACKLOG); must exceed the detectors' scaling target."
  type        = number
}

variable "count_in_flight" {
  description = "Count in-flight messages in the backlog too (POLYBOT_COUNT_IN_FLIGHT)."
  type        = bool
  default     = false
}

variable "ami_ssm_parameter" {
  type = string
}

variable "image" {
  type = string
}

variable "ecr_repository_arn" {
  type = string
}

variable "http_port" {
  type    = number
  default = 9091
}

variable "common_environment" {
  type = map(string)
}

variable "queue_arn" {
  type = string
}

variable "table_arn" {
  description = "The predictions table, whose backlog item (only) the reporter reads."
  type        = string
}

variable "kms_key_arn" {
  type = string
}

variable "log_retention_days" {
  type = number
}

variable "tags" {
  type    = map(string)
  default = {}
}
