# Polybot on AWS, one region per Terraform workspace:
#
#   terraform workspace select eu-west-1 || terraform workspace new eu-west-1
#   terraform apply -var-file=region.eu-west-1.tfvars -var image_tag=v1.0.0
#
# Telegram -> HTTPS ALB -> gateway (ASG, 2 AZs) -> S3 + SQS -> detector
# (ASG, target tracking on BacklogPerInstance) -> Results gRPC (internal NLB)
# -> gateway -> Telegram. The reporter publishes the scaling metric.
# Operations: alarms and a dashboard (module.monitoring), each alarm linked
# to its section of docs/RUNBOOK.md; operators reach the gateways' gRPC
# through Session Manager when operator_ssm_access is on.

locals {
  # One workspace per region: refuse to plan region X's variables in
  # workspace Y (Terraform 1.0 has no preconditions; file() of a path that
  # does not exist fails with this text in the error).
  region = terraform.workspace == var.region ? var.region : file("ERROR: the workspace is \"${terraform.workspace}\" but region is \"${var.region}\"; run: terraform workspace select ${var.region}")

  tags = {
    Project   = var.name
    ManagedBy = "terraform"
  }

  images = { for k, url in module.storage.repository_urls : k => "${url}:${var.image_tag}" }

  # The detectors' scaling target (AWS's guide for scaling on a queue):
  # acceptable backlog per instance = acceptable latency / average time an
  # instance spends per job.
  detector_target = var.detector_target_backlog_per_instance != null ? var.detector_target_backlog_per_instance : floor(var.detector_acceptable_latency / var.detector_seconds_per_job)

  # With jobs waiting and no detector in service the reporter publishes this;
  # target tracking scales out only when the metric exceeds the target, so
  # it must (checked here, Terraform 1.0 has no preconditions: file() of a
  # path that does not exist fails with this text in the error).
  wanted_no_instance_backlog   = var.reporter_no_instance_backlog != null ? var.reporter_no_instance_backlog : 2 * local.detector_target
  reporter_no_instance_backlog = local.wanted_no_instance_backlog > local.detector_target ? local.wanted_no_instance_backlog : file("ERROR: reporter_no_instance_backlog (${local.wanted_no_instance_backlog}) must exceed the detector scaling target (${local.detector_target}), or the detector group never scales out from zero")

  # Without internet egress a detector reaches AWS through the VPC's
  # endpoints alone, so these must be among interface_endpoints (the S3
  # and DynamoDB gateway endpoints always exist). Checked here, as above.
  detector_endpoints         = ["sqs", "secretsmanager", "logs", "autoscaling", "ecr.api", "ecr.dkr"]
  missing_detector_endpoints = var.detector_internet_egress ? [] : setsubtract(local.detector_endpoints, var.interface_endpoints)
  detector_internet_egress   = length(local.missing_detector_endpoints) == 0 ? var.detector_internet_egress : file("ERROR: detector_internet_egress is false, so the detectors reach AWS only through VPC endpoints, but interface_endpoints lacks ${join(", ", sort(local.missing_detector_endpoints))}")

  # Settings every service reads (docs/configuration.md).
  common_environment = merge(
    {
      POLYBOT_BACKEND    = "aws"
      AWS_REGION         = local.region
      POLYBOT_BUCKET     = module.storage.bucket_name
      POLYBOT_QUEUE_URL  = module.storage.queue_url
      POLYBOT_DLQ_URL    = module.storage.dlq_url
      POLYBOT_TABLE      = module.storage.table_name
      POLYBOT_LOG_FORMAT = "json"
      RUST_LOG           = var.rust_log
      # The one retention clock: records expire after as many days as the
      # images bucket keeps objects (module.storage), and the gateway's
      # /privacy states it.
      POLYBOT_RETENTION_DAYS = tostring(var.retention_days)
      # The services' own metrics, as CloudWatch EMF lines on stdout,
      # which the awslogs driver ships (the dashboard's app widgets).
      POLYBOT_METRICS_EMF = "true"
    },
    var.otel_exporter_otlp_endpoint == "" ? tomap({}) : tomap({
      OTEL_EXPORTER_OTLP_ENDPOINT = var.otel_exporter_otlp_endpoint
      OTEL_RESOURCE_ATTRIBUTES    = "deployment.environment=${local.region}"
    })
  )
}

provider "aws" {
  region = local.region

  default_tags {
    tags = local.tags
  }
}

module "storage" {
  source = "./modules/storage"

  name                        = var.name
  retention_days              = var.retention_days
  log_retention_days          = var.log_retention_days
  queue_visibility_timeout    = var.queue_visibility_timeout
  queue_max_receive_count     = var.queue_max_receive_count
  secret_recovery_window_days = var.secret_recovery_window_days
  deletion_protection         = var.deletion_protection
}

module "network" {
  source = "./modules/network"

  name                = var.name
  cidr_block          = var.vpc_cidr
  single_nat_gateway  = var.single_nat_gateway
  interface_endpoints = var.interface_endpoints
  kms_key_arn         = module.storage.kms_key_arn
  log_retention_days  = var.log_retention_days
}

module "alb" {
  source = "./modules/alb"

  name                = var.name
  vpc_id              = module.network.vpc_id
  vpc_cidr            = module.network.vpc_cidr
  public_subnet_ids   = module.network.public_subnet_ids
  domain_name         = var.domain_name
  hosted_zone_name    = var.hosted_zone_name
  allowed_cidrs       = var.telegram_cidrs
  logs_bucket         = module.storage.logs_bucket_name
  deletion_protection = var.deletion_protection
}

module "gateway" {
  source = "./modules/gateway"

  name                  = var.name
  vpc_id                = module.network.vpc_id
  vpc_cidr              = module.network.vpc_cidr
  private_subnet_ids    = module.network.private_subnet_ids
  alb_security_group_id = module.alb.security_group_id
  alb_target_group_arn  = module.alb.target_group_arn
  public_url            = module.alb.public_url
  private_zone_name     = var.private_zone_name
  instance_type         = var.gateway_instance_type
  min_size              = var.gateway_min_size
  max_size              = var.gateway_max_size
  ami_ssm_parameter     = var.ami_ssm_parameter
  image                 = local.images["gateway"]
  # One user cannot slow everyone (docs/operations.md: Fair share).
  user_photos_per_minute = var.gateway_user_photos_per_minute
  chat_pending_limit     = var.gateway_chat_pending_limit
  ecr_repository_arn     = module.storage.repository_arns["gateway"]
  common_environment     = local.common_environment
  bucket_arn             = module.storage.bucket_arn
  queue_arn              = module.storage.queue_arn
  dlq_arn                = module.storage.dlq_arn
  table_arn              = module.storage.table_arn
  secret_arn             = module.storage.secret_arn
  results_secret_arn     = module.storage.results_secret_arn
  kms_key_arn            = module.storage.kms_key_arn
  log_retention_days     = var.log_retention_days
  deletion_protection    = var.deletion_protection
  # Operators' Session Manager path to the gRPC port (docs/RUNBOOK.md).
  operator_ssm_access    = var.operator_ssm_access
  operator_ssm_endpoints = var.operator_ssm_endpoints
  # Only detectors may reach the Results port.
  detector_security_group_id = module.detector.security_group_id
  tags                       = local.tags
}

module "detector" {
  source = "./modules/detector"

  name                        = var.name
  vpc_id                      = module.network.vpc_id
  vpc_cidr                    = module.network.vpc_cidr
  private_subnet_ids          = module.network.private_subnet_ids
  instance_type               = var.detector_instance_type
  min_size                    = var.detector_min_size
  max_size                    = var.detector_max_size
  target_backlog_per_instance = local.detector_target
  instance_warmup             = var.detector_instance_warmup
  shutdown_grace              = var.detector_shutdown_grace
  lanes                       = var.detector_lanes
  precision                   = var.detector_precision
  metric_namespace            = var.metric_namespace
  results_url                 = module.gateway.results_url
  ami_ssm_parameter           = var.ami_ssm_parameter
  image                       = local.images["detector"]
  ecr_repository_arn          = module.storage.repository_arns["detector"]
  common_environment          = local.common_environment
  bucket_arn                  = module.storage.bucket_arn
  queue_arn                   = module.storage.queue_arn
  dlq_arn                     = module.storage.dlq_arn
  table_arn                   = module.storage.table_arn
  # The Results tokens' own secret: a detector never reads the bot token.
  secret_arn         = module.storage.results_secret_arn
  kms_key_arn        = module.storage.kms_key_arn
  log_retention_days = var.log_retention_days
  # No open internet egress unless asked for: the VPC's endpoints only.
  internet_egress                  = local.detector_internet_egress
  gateway_endpoint_prefix_list_ids = module.network.gateway_endpoint_prefix_list_ids
  tags                             = local.tags
}

module "reporter" {
  source = "./modules/reporter"

  name                = var.name
  vpc_id              = module.network.vpc_id
  private_subnet_ids  = module.network.private_subnet_ids
  instance_type       = var.reporter_instance_type
  detector_asg_name   = module.detector.asg_name
  report_interval     = var.reporter_interval
  metric_namespace    = var.metric_namespace
  no_instance_backlog = local.reporter_no_instance_backlog
  count_in_flight     = var.reporter_count_in_flight
  ami_ssm_parameter   = var.ami_ssm_parameter
  image               = local.images["reporter"]
  ecr_repository_arn  = module.storage.repository_arns["reporter"]
  common_environment  = local.common_environment
  queue_arn           = module.storage.queue_arn
  table_arn           = module.storage.table_arn
  kms_key_arn         = module.storage.kms_key_arn
  log_retention_days  = var.log_retention_days
  tags                = local.tags
}

module "monitoring" {
  source = "./modules/monitoring"

  name                         = var.name
  queue_name                   = module.storage.queue_name
  dlq_name                     = module.storage.dlq_name
  detector_asg_name            = module.detector.asg_name
  metric_namespace             = var.metric_namespace
  oldest_message_age_threshold = var.oldest_message_age_threshold
  alarm_email                  = var.alarm_email
  kms_key_arn                  = module.storage.kms_key_arn
  runbook_url                  = var.runbook_url
  alb_4xx_threshold            = var.webhook_4xx_threshold
  detector_max_size            = var.detector_max_size
  detector_target_backlog      = local.detector_target
  gateway_asg_name             = module.gateway.asg_name
  reporter_asg_name            = module.reporter.asg_name

  alb_arn_suffix                  = module.alb.arn_suffix
  alb_target_group_arn_suffix     = module.alb.target_group_arn_suffix
  results_lb_arn_suffix           = module.gateway.results_lb_arn_suffix
  results_target_group_arn_suffix = module.gateway.results_target_group_arn_suffix
}
