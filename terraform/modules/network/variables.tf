variable "name" {
  description = "Name prefix for every resource."
  type        = string
}

variable "cidr_block" {
  description = "CIDR block of the VPC; the 4 subnets are slices 8 bits longer (a /24 each for a /16)."
  type        = string
  default     = "10.20.0.0/16"
}

variable "single_nat_gateway" {
  description = "One NAT gateway for both AZs (cheaper) instead of one per AZ (the default: survives an AZ outage)."
  type        = bool
  default     = false
}

variable "interface_endpoints" {
  description = "AWS services reached through interface VPC endpoints, so AWS calls stay off the NAT gateway."
  type        = list(string)
  default     = ["sqs", "secretsmanager", "monitoring", "logs", "autoscaling", "ecr.api", "ecr.dkr"]
}

variable "kms_key_arn" {
  description = "KMS key for the flow-log log group."
  type        = string
}

variable "log_retention_days" {
  description = "Days to keep VPC flow logs."
  type        = number
  default     = 365
}
