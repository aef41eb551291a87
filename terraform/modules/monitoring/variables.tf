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

variable "alb_arn_suffix" {
  description = "The webhook load balancer (CloudWatch dimension LoadBalancer)."
  type        = string
}

variable "alb_target_group_arn_suffix" {
  description = "The gateway target group behind it (CloudWatch dimension TargetGroup)."
  type        = string
}

variable "results_lb_arn_suffix" {
  description = "The internal Results network load balancer."
  type        = string
}

variable "results_target_group_arn_suffix" {
  description = "The gateway target group behind the Results load balancer."
  type        = string
}

variable "alb_5xx_threshold" {
  description = "Alarm when the webhook load balancer answers more than this many 5xx (its own or the gateway's) in each of 3 minutes. Telegram retries a failed delivery, so a few are harmless."
  type        = number
  default     = 5
}

variable "alb_4xx_threshold" {
  description = "Alarm when the gateways answer the webhook with 4xx this many times or more in 5 minutes (a mismatched webhook secret makes every delivery a 401)."
  type        = number
  default     = 5
}

variable "runbook_url" {
  description = "Where docs/RUNBOOK.md is read; each alarm's description links to <runbook_url>#<its section>."
  type        = string
}

variable "detector_max_size" {
  description = "The detector group's maximum size: the alarm when it stays there, and the dashboard's line."
  type        = number
}

variable "detector_target_backlog" {
  description = "The detector group's BacklogPerInstance target, drawn on the dashboard."
  type        = number
}

variable "gateway_asg_name" {
  type = string
}

variable "reporter_asg_name" {
  type = string
}
