variable "name" {
  description = "Name prefix (the group is <name>-gateway)."
  type        = string
}

variable "vpc_id" {
  type = string
}

variable "vpc_cidr" {
  description = "Only addresses in the VPC may reach the Results gRPC service."
  type        = string
}

variable "private_subnet_ids" {
  type = list(string)
}

variable "alb_security_group_id" {
  type = string
}

variable "alb_target_group_arn" {
  type = string
}

variable "public_url" {
  description = "Public base URL; the gateway registers <public_url>/telegram/webhook with Telegram at start."
  type        = string
}

variable "private_zone_name" {
  description = "Private Route 53 zone for internal names (results.<zone>)."
  type        = string
}

variable "instance_type" {
  type = string
}

variable "min_size" {
  type = number
}

variable "max_size" {
  type = number
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
  default = 8080
}

variable "grpc_port" {
  type    = number
  default = 50051
}

variable "common_environment" {
  description = "Environment shared by all services (backend, region, bucket, queues, table, logging, OTel)."
  type        = map(string)
}

variable "bucket_arn" {
  type = string
}

variable "queue_arn" {
  type = string
}

variable "dlq_arn" {
  type = string
}

variable "table_arn" {
  type = string
}

variable "secret_arn" {
  type = string
}

variable "kms_key_arn" {
  type = string
}

variable "log_retention_days" {
  type = number
}

variable "deletion_protection" {
  type = bool
}

variable "tags" {
  type    = map(string)
  default = {}
}

variable "detector_security_group_id" {
  description = "The detectors' security group: the only source the Results port admits."
  type        = string
}

variable "user_photos_per_minute" {
  description = "POLYBOT_USER_PHOTOS_PER_MINUTE"
  type        = number
}

variable "chat_pending_limit" {
  description = "POLYBOT_CHAT_PENDING_LIMIT"
  type        = number
}
