variable "name" {
  description = "Name prefix for every resource (e.g. polybot)."
  type        = string
}

variable "retention_days" {
  description = "The retention clock (the services' POLYBOT_RETENTION_DAYS): days after which every object in the images bucket (originals and results) expires."
  type        = number
  default     = 30

  validation {
    condition     = var.retention_days == floor(var.retention_days) && var.retention_days >= 1 && var.retention_days <= 3650
    error_message = "retention_days must be a whole number of days from 1 to 3650."
  }
}

variable "log_retention_days" {
  description = "Days to keep ALB and S3 access logs in the logs bucket."
  type        = number
  default     = 365
}

variable "queue_visibility_timeout" {
  description = "Visibility timeout of the jobs queue, in seconds (the detector extends it by heartbeats for long jobs)."
  type        = number
  default     = 60
}

variable "queue_max_receive_count" {
  description = "Receives after which a job moves to the dead-letter queue."
  type        = number
  default     = 3
}

variable "secret_recovery_window_days" {
  description = "Days a deleted Telegram secret can be restored (0 deletes at once, so the name can be reused immediately)."
  type        = number
  default     = 7
}

variable "ecr_repositories" {
  description = "Container image repositories to create, one per service."
  type        = list(string)
  default     = ["gateway", "detector", "reporter"]
}

variable "deletion_protection" {
  description = "Protect the table from deletion and keep non-empty buckets and repositories on destroy."
  type        = bool
  default     = true
}
