# The reporter: one instance (an Auto Scaling Group of exactly one, so it is
# replaced if it fails) that publishes Polybot/BacklogPerInstance and
# Polybot/AverageProcessingTime for the detector group every interval. The
# backlog is the queue's messages plus the queued clips' extra cost, read
# from the one backlog item of the predictions table.

locals {
  full_name = "${var.name}-reporter"

  # The hash key of the table's backlog item: polybot_storage::aws::BACKLOG_PK
  # (the deployment test checks that they agree).
  backlog_item_key = "backlog#costs"
}

data "aws_region" "current" {}

data "aws_iam_policy_document" "reporter" {
  statement {
    sid       = "ReadQueueDepth"
    actions   = ["sqs:GetQueueAttributes"]
    resources = [var.queue_arn]
  }

  statement {
    sid = "ReadBacklogItem"
    # The extra cost of queued clips; this one item and nothing else of the
    # table (predictions, chats' settings).
    actions   = ["dynamodb:GetItem"]
    resources = [var.table_arn]
    condition {
      test     = "ForAllValues:StringEquals"
      variable = "dynamodb:LeadingKeys"
      values   = [local.backlog_item_key]
    }
  }

  statement {
    sid = "DecryptBacklogItem"
    # The table is encrypted with the stack's key; only through DynamoDB.
    actions   = ["kms:Decrypt"]
    resources = [var.kms_key_arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["dynamodb.${data.aws_region.current.name}.amazonaws.com"]
    }
  }

  statement {
    sid = "CountDetectors"
    # Describe calls have no resource-level permissions.
    actions   = ["autoscaling:DescribeAutoScalingGroups"]
    resources = ["*"]
  }

  statement {
    sid = "PublishPolybotMetrics"
    # PutMetricData has no resource-level permissions; the condition limits
    # it to our namespace.
    actions   = ["cloudwatch:PutMetricData"]
    resources = ["*"]
    condition {
      test     = "StringEquals"
      variable = "cloudwatch:namespace"
      values   = [var.metric_namespace]
    }
  }
}

module "service" {
  source = "../service"

  name               = local.full_name
  service            = "reporter"
  subnet_ids         = var.private_subnet_ids
  vpc_id             = var.vpc_id
  instance_type      = var.instance_type
  ami_ssm_parameter  = var.ami_ssm_parameter
  image              = var.image
  ecr_repository_arn = var.ecr_repository_arn
  policy_json        = data.aws_iam_policy_document.reporter.json
  min_size           = 1
  max_size           = 1
  report_unhealthy   = true
  kms_key_arn        = var.kms_key_arn
  log_retention_days = var.log_retention_days
  tags               = var.tags

  environment = merge(var.common_environment, {
    OTEL_SERVICE_NAME           = "reporter"
    POLYBOT_HTTP_LISTEN         = "0.0.0.0:${var.http_port}"
    POLYBOT_ASG_NAME            = var.detector_asg_name
    POLYBOT_REPORT_INTERVAL     = tostring(var.report_interval)
    POLYBOT_METRIC_NAMESPACE    = var.metric_namespace
    POLYBOT_NO_INSTANCE_BACKLOG = tostring(var.no_instance_backlog)
    POLYBOT_COUNT_IN_FLIGHT     = tostring(var.count_in_flight)
  })
}
