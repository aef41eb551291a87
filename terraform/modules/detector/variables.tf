variable "name" {
  description = "Name prefix (the group is <name>-detector)."
  type        = string
}

variable "vpc_id" {
  type = string
}

variable "vpc_cidr" {
  type = string
}

variable "private_subnet_ids" {
  type = list(string)
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

variable "target_backlog_per_instance" {
  description = "Target value of Polybot/BacklogPerInstance = acceptable latency per message / average processing time per message (docs/deploy.md)."
  type        = number
}

variable "instance_warmup" {
  description = "Seconds a new detector needs (boot, image pull, model load, warm-up inference) before its metrics count."
  type        = number
}

variable "shutdown_grace" {
  description = "Seconds the detector gets to finish in-flight jobs after SIGTERM (POLYBOT_SHUTDOWN_GRACE)."
  type        = number
}

variable "lanes" {
  description = "Inference lanes per instance (POLYBOT_LANES); 0 lets the detector use the number of CPUs."
  type        = number
  default     = 0
}

variable "precision" {
  description = "Model precision (POLYBOT_PRECISION): auto, fp32 or int8."
  type        = string
  default     = "auto"
}

variable "metric_namespace" {
  type = string
}

variable "results_url" {
  type = string
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
  default = 9090
}

variable "grpc_port" {
  type    = number
  default = 50051
}

variable "common_environment" {
  type = map(string)
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

variable "secret_arn" {
  description = "The Results tokens' own secret (not the Telegram one): its JSON field results_token is what the workers present to Results."
  type        = string
}

variable "internet_egress" {
  description = "Let the detectors open HTTPS connections to any address. False (the default at the root): only the VPC's endpoints and the Results port."
  type        = bool
  default     = false
}

variable "gateway_endpoint_prefix_list_ids" {
  description = "Prefix lists of the S3 and DynamoDB gateway endpoints (egress without internet access)."
  type        = list(string)
}
