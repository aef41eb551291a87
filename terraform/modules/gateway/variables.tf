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

variable "results_secret_arn" {
  description = "The Results tokens' own secret (POLYBOT_RESULTS_SECRET_ID): its results_token and results_token_previous take precedence over the Telegram secret's."
  type        = string
}

variable "health_check_path" {
  description = "What the internal load balancer checks: /readyz, so a gateway that cannot serve leaves the target group."
  type        = string
  default     = "/readyz"
}

variable "operator_ssm_access" {
  description = "Give the gateway instances' role AmazonSSMManagedInstanceCore, so operators can port-forward to the gRPC port with Session Manager (docs/RUNBOOK.md)."
  type        = bool
  default     = false
}

variable "operator_ssm_endpoints" {
  description = "With operator_ssm_access: create the ssm, ssmmessages and ec2messages interface endpoints (admitting the gateways' security group only) so Session Manager traffic stays in the VPC (needed where the private subnets have no NAT route)."
  type        = bool
  default     = false
}
