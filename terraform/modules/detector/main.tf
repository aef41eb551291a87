# The detector workers: an Auto Scaling Group scaled by target tracking on
# the reporter's Polybot/BacklogPerInstance metric, with a termination
# lifecycle hook so that scale-in and instance refreshes drain a worker (stop
# receiving, finish or release in-flight jobs) before the instance goes.
#
# Least privilege: a detector decodes untrusted files (photos, clips) in C
# code, so its role reads only the Results tokens' secret (never the bot
# token), writes only result keys, uses the stack's key only through the
# services it calls, and, unless internet_egress is on, its security group
# reaches only the VPC's endpoints and the Results port: no open internet.

data "aws_region" "current" {}

locals {
  full_name = "${var.name}-detector"

  # The folders detectors write their results to, under each chat's folder
  # (polybot_domain::ObjectKey: <chat_id>/predicted/..., filtered, crops,
  # album); originals (<chat_id>/original/...) are the gateway's. The
  # deployment test checks this list against the code's keys.
  result_folders = ["predicted", "filtered", "crops", "album"]
}

# Without internet egress: HTTPS to the interface endpoints (in the VPC's
# range: SQS, Secrets Manager, Logs, Auto Scaling, ECR) and to the S3 and
# DynamoDB gateway endpoints (their prefix lists; S3 also serves the image
# layers and Amazon Linux's package repositories). DNS (the VPC resolver)
# and instance metadata are not subject to security groups.
resource "aws_security_group_rule" "endpoints_out" {
  count             = var.internet_egress ? 0 : 1
  type              = "egress"
  description       = "HTTPS to the interface VPC endpoints"
  security_group_id = module.service.security_group_id
  from_port         = 443
  to_port           = 443
  protocol          = "tcp"
  cidr_blocks       = [var.vpc_cidr]
}

resource "aws_security_group_rule" "gateway_endpoints_out" {
  count             = var.internet_egress ? 0 : 1
  type              = "egress"
  description       = "HTTPS to the S3 and DynamoDB gateway endpoints"
  security_group_id = module.service.security_group_id
  from_port         = 443
  to_port           = 443
  protocol          = "tcp"
  prefix_list_ids   = var.gateway_endpoint_prefix_list_ids
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
    sid       = "ReadOriginals"
    actions   = ["s3:GetObject"]
    resources = ["${var.bucket_arn}/*"]
  }

  statement {
    # Results only (<chat_id>/predicted/..., filtered, crops, album): a
    # detector can never overwrite an original or write anywhere else.
    sid       = "WriteOwnResults"
    actions   = ["s3:PutObject"]
    resources = formatlist("${var.bucket_arn}/*/%s/*", local.result_folders)
  }

  statement {
    # A chat erased (/forget) while its job ran: the worker deletes every
    # version of the results it has just stored (ListObjectVersions with the
    # key as prefix, then DeleteObjects by version id). Results only, never
    # originals or a whole chat: erasing a chat is the gateway's.
    sid       = "ListOwnResultVersions"
    actions   = ["s3:ListBucketVersions"]
    resources = [var.bucket_arn]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = formatlist("*/%s/*", local.result_folders)
    }
  }

  statement {
    # DeleteObjects needs s3:DeleteObject always (AWS's API reference), and
    # s3:DeleteObjectVersion for entries with a version id.
    sid       = "DeleteOwnResultsOfErasedChat"
    actions   = ["s3:DeleteObject", "s3:DeleteObjectVersion"]
    resources = formatlist("${var.bucket_arn}/*/%s/*", local.result_folders)
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
    # The Results tokens' own secret, not the Telegram one.
    sid       = "ReadResultsToken"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [var.secret_arn]
  }

  statement {
    # The objects, the table and the secret are encrypted with the stack's
    # key; a detector may use it only through those services, never call
    # KMS itself.
    sid       = "UseDataKeyThroughServices"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [var.kms_key_arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = [for s in ["s3", "dynamodb", "secretsmanager"] : "${s}.${data.aws_region.current.name}.amazonaws.com"]
    }
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
  open_https_egress  = var.internet_egress
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
