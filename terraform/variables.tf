variable "region" {
  description = "AWS region to deploy to. Must equal the selected workspace (one workspace per region, with region.<region>.tfvars)."
  type        = string
}

variable "name" {
  description = "Name prefix for every resource."
  type        = string
  default     = "polybot"
}

variable "image_tag" {
  description = "Container image tag to run (the release tag pushed by the release workflow, e.g. v1.2.0)."
  type        = string
}

variable "domain_name" {
  description = "Public DNS name of the webhook, e.g. bot.example.com (inside hosted_zone_name)."
  type        = string
}

variable "hosted_zone_name" {
  description = "Existing public Route 53 hosted zone, e.g. example.com."
  type        = string
}

variable "telegram_cidrs" {
  description = "Telegram's webhook source ranges; nothing else may reach the load balancer."
  type        = list(string)
  default     = ["149.154.160.0/20", "91.108.4.0/22"]
}

variable "vpc_cidr" {
  type    = string
  default = "10.20.0.0/16"
}

variable "single_nat_gateway" {
  description = "One NAT gateway for both AZs: cheaper (about 33 USD a month less plus data), but the Telegram traffic of both AZs then depends on one AZ. The default is one NAT gateway per AZ."
  type        = bool
  default     = false
}

variable "interface_endpoints" {
  description = "AWS services reached through interface VPC endpoints."
  type        = list(string)
  default     = ["sqs", "secretsmanager", "monitoring", "logs", "autoscaling", "ecr.api", "ecr.dkr"]
}

variable "private_zone_name" {
  description = "Private Route 53 zone for internal names; the Results gRPC service is results.<zone>."
  type        = string
  default     = "polybot.internal"
}

variable "ami_ssm_parameter" {
  description = "Public SSM parameter with the AMI id for all instances (Amazon Linux 2023, x86_64)."
  type        = string
  default     = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
}

variable "gateway_instance_type" {
  type    = string
  default = "t3.small"
}

variable "gateway_min_size" {
  description = "At least 2: one gateway per availability zone."
  type        = number
  default     = 2
}

variable "gateway_max_size" {
  type    = number
  default = 4
}

variable "gateway_user_photos_per_minute" {
  description = "Photos one Telegram user may send a minute (POLYBOT_USER_PHOTOS_PER_MINUTE; an album's photos each count); 0: no limit."
  type        = number
  default     = 10
}

variable "gateway_chat_pending_limit" {
  description = "Requests a chat may have waiting for their answers (POLYBOT_CHAT_PENDING_LIMIT; an album is one); 0: no limit."
  type        = number
  default     = 3
}

variable "detector_instance_type" {
  description = "A CPU family with AVX-512 VNNI and AMX (c7i: Sapphire Rapids), where INT8 inference pays off."
  type        = string
  default     = "c7i.large"
}

variable "detector_min_size" {
  type    = number
  default = 1
}

variable "detector_max_size" {
  type    = number
  default = 4
}

variable "detector_acceptable_latency" {
  description = "Seconds a photo may wait in the queue before its detection starts; with detector_seconds_per_job it gives the scaling target (docs/deploy.md)."
  type        = number
  default     = 10
}

variable "detector_seconds_per_job" {
  description = "Average seconds one detector instance spends per job, all lanes together (the benchmark's 1 / images-per-second plus the S3 and Results round trips; compare Polybot/AverageProcessingTime). 0.1 s is conservative for c7i.large (2 lanes: 50.7 photos/s in BENCHMARKS.md)."
  type        = number
  default     = 0.1
}

variable "detector_target_backlog_per_instance" {
  description = "Scaling target of BacklogPerInstance. Null (the default) derives it as AWS's guide does: acceptable backlog per instance = floor(detector_acceptable_latency / detector_seconds_per_job), e.g. 10 s / 0.1 s = 100."
  type        = number
  default     = null
}

variable "detector_instance_warmup" {
  description = "Seconds a new detector instance needs before it counts (boot, pull, model load, warm-up)."
  type        = number
  default     = 180
}

variable "detector_shutdown_grace" {
  description = "Seconds a detector gets to finish in-flight jobs when it is scaled in or replaced."
  type        = number
  default     = 30
}

variable "detector_lanes" {
  description = "Inference lanes per detector; 0 = number of CPUs."
  type        = number
  default     = 0
}

variable "detector_precision" {
  description = "Model precision (POLYBOT_PRECISION): auto (int8, the static-quantized model the detector image also carries, on CPUs with AVX-512 VNNI or AMX such as c7i, where it is about 1.6x as fast; fp32 elsewhere; each detector logs its choice and shows it on /metrics), or fp32 or int8 to force one. BENCHMARKS.md has the figures."
  type        = string
  default     = "auto"

  validation {
    condition     = contains(["auto", "fp32", "int8"], var.detector_precision)
    error_message = "detector_precision must be \"auto\", \"fp32\" or \"int8\"."
  }
}

variable "reporter_instance_type" {
  type    = string
  default = "t3.micro"
}

variable "reporter_interval" {
  description = "Seconds between metric publications."
  type        = number
  default     = 30
}

variable "reporter_no_instance_backlog" {
  description = "BacklogPerInstance published when jobs wait and no detector is in service. It must exceed the scaling target, or target tracking never scales out from zero; null (the default) publishes twice the target."
  type        = number
  default     = null
}

variable "reporter_count_in_flight" {
  description = "Count in-flight messages in the backlog too."
  type        = bool
  default     = false
}

variable "metric_namespace" {
  type    = string
  default = "Polybot"
}

variable "queue_visibility_timeout" {
  type    = number
  default = 60
}

variable "queue_max_receive_count" {
  description = "Receives after which a job goes to the dead-letter queue."
  type        = number
  default     = 3
}

variable "retention_days" {
  description = "The one retention clock, in whole days (1 to 3650): the images bucket expires objects after this many days (current versions; a version that stops being current goes a day later), and the gateway, detector and reporter get it as POLYBOT_RETENTION_DAYS, which sets when their records expire and what the gateway's /privacy says."
  type        = number
  default     = 30

  validation {
    condition     = var.retention_days == floor(var.retention_days) && var.retention_days >= 1 && var.retention_days <= 3650
    error_message = "retention_days must be a whole number of days from 1 to 3650 (the services' --retention-days accepts no other)."
  }
}

variable "image_retention_days" {
  description = "Renamed to retention_days, which now sets the records' retention as well as the images'. Left here only so a tfvars file that still sets it fails the plan instead of being ignored with a warning."
  type        = number
  default     = null

  validation {
    condition     = var.image_retention_days == null
    error_message = "image_retention_days was renamed to retention_days, which now sets the images' and the records' retention alike (POLYBOT_RETENTION_DAYS): set retention_days instead."
  }
}

variable "log_retention_days" {
  description = "Days to keep service logs, flow logs and access logs."
  type        = number
  default     = 365
}

variable "oldest_message_age_threshold" {
  description = "Alarm when the oldest waiting job is older than this many seconds."
  type        = number
  default     = 300
}

variable "alarm_email" {
  description = "Optional e-mail address for alarm notifications."
  type        = string
  default     = ""
}

variable "webhook_4xx_threshold" {
  description = "Alarm when the gateways answer the webhook with 4xx this many times or more in 5 minutes; a webhook secret that no longer matches Telegram's makes every delivery a 401."
  type        = number
  default     = 5
}

variable "runbook_url" {
  description = "Where operators read docs/RUNBOOK.md; every alarm's description links to <runbook_url>#<its section>. The deploy workflow can set the repository's URL (e.g. https://github.com/<owner>/<repo>/blob/<commit>/docs/RUNBOOK.md); the default names the file in the repository."
  type        = string
  default     = "docs/RUNBOOK.md"
}

variable "operator_ssm_access" {
  description = "Let operators reach the gateways' gRPC port (and a shell) through AWS Systems Manager Session Manager: the gateway instances' role, and only theirs, gets AmazonSSMManagedInstanceCore. No address range is opened; access is whatever IAM grants the operator (ssm:StartSession). See docs/RUNBOOK.md."
  type        = bool
  default     = false
}

variable "operator_ssm_endpoints" {
  description = "With operator_ssm_access: create the ssm, ssmmessages and ec2messages interface endpoints (HTTPS from the gateways' security group only), so Session Manager traffic stays inside the VPC. The private subnets route to NAT, so Session Manager also works without them (about 44 USD a month less for two AZs); subnets without a NAT route need them."
  type        = bool
  default     = false
}

variable "detector_internet_egress" {
  description = "Let the detectors open HTTPS connections to any address. False (the default): the detectors, which decode untrusted files, reach only the VPC's endpoints (interface_endpoints, S3, DynamoDB) and the gateways' Results port. An OTLP collector outside the VPC (otel_exporter_otlp_endpoint) needs true, or a collector inside it."
  type        = bool
  default     = false
}

variable "otel_exporter_otlp_endpoint" {
  description = "Optional OTLP/gRPC endpoint for traces and metrics (OTEL_EXPORTER_OTLP_ENDPOINT); empty = no export."
  type        = string
  default     = ""
}

variable "rust_log" {
  description = "RUST_LOG filter for every service."
  type        = string
  default     = "info"
}

variable "deletion_protection" {
  description = "Protect load balancers and the table, and keep non-empty buckets and repositories on destroy. Set false (and apply) before terraform destroy."
  type        = bool
  default     = true
}

variable "secret_recovery_window_days" {
  description = "Days a destroyed Telegram secret stays restorable (0 = delete at once)."
  type        = number
  default     = 7
}
