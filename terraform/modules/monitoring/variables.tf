variable "name" {
  type = string
}

variable "queue_name" {
  type = string
}

variable "dlq_name" {
  type = string
}

variable "detector_asg_name" {
  type = string
}

variable "metric_namespace" {
  type = string
}

variable "oldest_message_age_threshold" {
  description = "Alarm when the oldest waiting job is older than this many seconds."
  type        = number
  default     = 300
}

variable "alarm_email" {
  description = "Optional e-mail address subscribed to the alarm topic (confirm the subscription e-mail)."
  type        = string
  default     = ""
}

variable "kms_key_arn" {
  type = string
}
