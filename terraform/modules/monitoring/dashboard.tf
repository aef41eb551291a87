# One dashboard per region (dashboard names are global to the account, so
# the region is in the name): the jobs queue and its dead letters, the
# scaling metric against its target, every group's capacity, what the
# webhook load balancer answered and how fast, and the services' own
# metrics. Those arrive as CloudWatch embedded metric format lines in the
# services' log groups (the awslogs driver ships each line as one event;
# modules/service), in namespace metric_namespace with dimension Service.

locals {
  dashboard_name = "${var.name}-${local.region}"

  # Each widget: a time series of metrics, [namespace, name, dims..., options].
  queue = ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName"]
  asg   = ["AWS/AutoScaling"]
  alb   = ["AWS/ApplicationELB"]
  app   = [var.metric_namespace]

  groups = {
    gateway  = var.gateway_asg_name
    detector = var.detector_asg_name
    reporter = var.reporter_asg_name
  }

  widgets = [
    {
      type   = "text"
      x      = 0
      y      = 0
      width  = 24
      height = 2
      properties = {
        markdown = "## ${var.name} in ${local.region}\nEvery alarm links to its section of the runbook: ${var.runbook_url}. Logs of one request across the services: the Logs Insights query by trace_id in the runbook."
      }
    },
    {
      type   = "metric"
      x      = 0
      y      = 2
      width  = 12
      height = 6
      properties = {
        title  = "Jobs: waiting, in progress, dead-lettered"
        region = local.region
        view   = "timeSeries"
        stat   = "Maximum"
        period = 60
        yAxis  = { left = { min = 0 } }
        metrics = [
          concat(local.queue, [var.queue_name, { label = "waiting (visible)" }]),
          ["AWS/SQS", "ApproximateNumberOfMessagesNotVisible", "QueueName", var.queue_name, { label = "in progress (not visible)" }],
          concat(local.queue, [var.dlq_name, { label = "dead-lettered (DLQ)", color = "#d62728" }]),
          ["AWS/SQS", "ApproximateNumberOfMessagesNotVisible", "QueueName", var.dlq_name, { label = "dead-lettered, kept out of sight (DLQ)", color = "#9467bd" }],
        ]
      }
    },
    {
      type   = "metric"
      x      = 12
      y      = 2
      width  = 12
      height = 6
      properties = {
        title  = "Age of the oldest waiting job (s)"
        region = local.region
        view   = "timeSeries"
        stat   = "Maximum"
        period = 60
        yAxis  = { left = { min = 0 } }
        metrics = [
          ["AWS/SQS", "ApproximateAgeOfOldestMessage", "QueueName", var.queue_name, { label = "oldest job" }],
        ]
        annotations = {
          horizontal = [{ label = "alarm", value = var.oldest_message_age_threshold, color = "#d62728" }]
        }
      }
    },
    {
      type   = "metric"
      x      = 0
      y      = 8
      width  = 12
      height = 6
      properties = {
        title  = "BacklogPerInstance against the scaling target"
        region = local.region
        view   = "timeSeries"
        stat   = "Average"
        period = 60
        yAxis  = { left = { min = 0 } }
        metrics = [
          concat(local.app, ["BacklogPerInstance", "AutoScalingGroupName", var.detector_asg_name, { label = "BacklogPerInstance" }]),
        ]
        annotations = {
          horizontal = [{ label = "target", value = var.detector_target_backlog }]
        }
      }
    },
    {
      type   = "metric"
      x      = 12
      y      = 8
      width  = 12
      height = 6
      properties = {
        title  = "Instances in service and desired, per group"
        region = local.region
        view   = "timeSeries"
        stat   = "Average"
        period = 60
        yAxis  = { left = { min = 0 } }
        metrics = concat(
          [for service, group in local.groups : concat(local.asg, ["GroupInServiceInstances", "AutoScalingGroupName", group, { label = "${service} in service" }])],
          [for service, group in local.groups : concat(local.asg, ["GroupDesiredCapacity", "AutoScalingGroupName", group, { label = "${service} desired" }])],
        )
        annotations = {
          horizontal = [{ label = "detector maximum", value = var.detector_max_size }]
        }
      }
    },
    {
      type   = "metric"
      x      = 0
      y      = 14
      width  = 12
      height = 6
      properties = {
        title  = "Webhook answers (per minute)"
        region = local.region
        view   = "timeSeries"
        stat   = "Sum"
        period = 60
        yAxis  = { left = { min = 0 } }
        metrics = [
          concat(local.alb, ["HTTPCode_Target_2XX_Count", "LoadBalancer", var.alb_arn_suffix, { label = "gateway 2xx" }]),
          concat(local.alb, ["HTTPCode_Target_4XX_Count", "LoadBalancer", var.alb_arn_suffix, { label = "gateway 4xx", color = "#ff7f0e" }]),
          concat(local.alb, ["HTTPCode_Target_5XX_Count", "LoadBalancer", var.alb_arn_suffix, { label = "gateway 5xx", color = "#d62728" }]),
          concat(local.alb, ["HTTPCode_ELB_4XX_Count", "LoadBalancer", var.alb_arn_suffix, { label = "load balancer 4xx" }]),
          concat(local.alb, ["HTTPCode_ELB_5XX_Count", "LoadBalancer", var.alb_arn_suffix, { label = "load balancer 5xx" }]),
        ]
      }
    },
    {
      type   = "metric"
      x      = 12
      y      = 14
      width  = 12
      height = 6
      properties = {
        title  = "Webhook response time (s)"
        region = local.region
        view   = "timeSeries"
        period = 60
        yAxis  = { left = { min = 0 } }
        metrics = [
          concat(local.alb, ["TargetResponseTime", "LoadBalancer", var.alb_arn_suffix, { stat = "p50", label = "p50" }]),
          concat(local.alb, ["TargetResponseTime", "LoadBalancer", var.alb_arn_suffix, { stat = "p99", label = "p99" }]),
        ]
      }
    },
    {
      type   = "metric"
      x      = 0
      y      = 20
      width  = 12
      height = 6
      properties = {
        title  = "Detection time per job (s)"
        region = local.region
        view   = "timeSeries"
        period = 300
        yAxis  = { left = { min = 0 } }
        metrics = [
          concat(local.app, ["ProcessingSeconds", "Service", "detector", { stat = "p50", label = "p50" }]),
          concat(local.app, ["ProcessingSeconds", "Service", "detector", { stat = "p90", label = "p90" }]),
          concat(local.app, ["ProcessingSeconds", "Service", "detector", { stat = "Maximum", label = "max" }]),
        ]
      }
    },
    {
      type   = "metric"
      x      = 12
      y      = 20
      width  = 12
      height = 6
      properties = {
        title  = "Jobs done and failed, answers sent (per 5 minutes)"
        region = local.region
        view   = "timeSeries"
        stat   = "Sum"
        period = 300
        yAxis  = { left = { min = 0 } }
        metrics = [
          concat(local.app, ["JobsSucceeded", "Service", "detector", { label = "jobs done" }]),
          concat(local.app, ["JobsFailed", "Service", "detector", { label = "jobs failed", color = "#d62728" }]),
          concat(local.app, ["Replies.Sent", "Service", "gateway", { label = "answers sent" }]),
        ]
      }
    },
  ]
}

resource "aws_cloudwatch_dashboard" "this" {
  dashboard_name = local.dashboard_name
  dashboard_body = jsonencode({ widgets = local.widgets })
}
