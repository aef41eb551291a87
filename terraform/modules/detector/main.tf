# The detector workers: an Auto Scaling Group scaled by target tracking on
# the reporter's Polybot/BacklogPerInstance metric, with a termination
# lifecycle hook so that scale-in and instance refreshes drain a worker (stop
# receiving, finish or release in-flight jobs) before the instance goes.

locals {
  full_name = "${var.name}-detector"
}

resource "aws_security_group_rule" "results_out" {
  type              = "egress"
  description       = "Results gRPC on the internal load balancer"
  security_group_id = module.service.security_group_id
  from_port         = var.grpc_port
  to_port           = var.grpc_port
  protocol          = "tcp"
  cidr_blocks       = [var.vpc_cidr]
}

data "aws_iam_policy_document" "detector" {
  statement {
    sid       = "ReadOriginalsWriteAnnotated"
    actions   = ["s3:GetObject", "s3:PutObject"]
    resources = ["${var.bucket_arn}/*"]
  }

  statement {
    # The start-up and readiness checks call HeadBucket, which S3
    # authorizes as s3:ListBucket on the bucket itself.
    sid       = "CheckBucket"
    actions   = ["s3:ListBucket"]
    resources = [var.bucket_arn]
  }

  statement {
    sid       = "ConsumeJobs"
    actions   = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes"]
    resources = [var.queue_arn]
  }

  statement {
    # Start-up check: the dead-letter queue exists (no jobs are taken from it).
    sid       = "CheckDeadLetterQueue"
    actions   = ["sqs:GetQueueAttributes"]
    resources = [var.dlq_arn]
  }

  statement {
    sid       = "WritePredictions"
    actions   = ["dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:DescribeTable"]
    resources = [var.table_arn]
  }

  statement {
    sid       = "ReadResultsToken"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [var.secret_arn]
  }

  statement {
    sid       = "UseDataKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [var.kms_key_arn]
  }
}

module "service" {
  source = "../service"

  name               = local.full_name
  service            = "detector"
  command            = ["worker"]
  subnet_ids         = var.private_subnet_ids
  vpc_id             = var.vpc_id
  instance_type      = var.instance_type
  ami_ssm_parameter  = var.ami_ssm_parameter
  image              = var.image
  ecr_repository_arn = var.ecr_repository_arn
  policy_json        = data.aws_iam_policy_document.detector.json
  min_size           = var.min_size
  max_size           = var.max_size
  instance_warmup    = var.instance_warmup
  stop_timeout       = var.shutdown_grace + 10
  drain_on_terminate = true
  report_unhealthy   = true
  kms_key_arn        = var.kms_key_arn
  log_retention_days = var.log_retention_days
  tags               = var.tags

  environment = merge(
    var.common_environment,
    {
      OTEL_SERVICE_NAME         = "detector"
      POLYBOT_HTTP_LISTEN       = "0.0.0.0:${var.http_port}"
      POLYBOT_RESULTS_URL       = var.results_url
      POLYBOT_RESULTS_SECRET_ID = var.secret_arn
      POLYBOT_SHUTDOWN_GRACE    = tostring(var.shutdown_grace)
      POLYBOT_PRECISION         = var.precision
    },
    var.lanes > 0 ? tomap({ POLYBOT_LANES = tostring(var.lanes) }) : tomap({})
  )
}

resource "aws_autoscaling_policy" "backlog_per_instance" {
  name                      = "${local.full_name}-backlog-per-instance"
  autoscaling_group_name    = module.service.asg_name
  policy_type               = "TargetTrackingScaling"
  estimated_instance_warmup = var.instance_warmup

  target_tracking_configuration {
    target_value = var.target_backlog_per_instance

    customized_metric_specification {
      namespace   = var.metric_namespace
      metric_name = "BacklogPerInstance"
      statistic   = "Average"

      metric_dimension {
        name  = "AutoScalingGroupName"
        value = module.service.asg_name
      }
    }
  }
}
