# Alarms, sent to an encrypted SNS topic: a message in the
# dead-letter queue, jobs waiting too long, and the reporter going silent
# (without its metric the detector group cannot scale), load balancer 5xx
# answers, gateway 4xx answers (a webhook secret that no longer matches
# turns every delivery into a 401), unhealthy gateways behind either load
# balancer, and the detector group stuck at its maximum size. Every alarm's
# description ends with the link to its section of docs/RUNBOOK.md (the
# anchors are checked against the runbook's headings by the deploy tests).
#
# And the dashboard: the queue, the scaling metric against its target, each
# group's capacity, the webhook load balancer and the services' own metrics
# (namespace metric_namespace, dimension Service), which the services write
# as CloudWatch embedded metric format lines in their logs.

data "aws_region" "current" {}

locals {
  region = data.aws_region.current.name

  # "Runbook: <url>#alarm-<name>": each alarm's section of the runbook, by
  # the alarm's name without the "<var.name>-" prefix (the runbook's
  # headings are "Alarm: <name>").
  runbook = {
    for anchor in [
      "dlq-not-empty", "oldest-job-age", "reporter-silent", "webhook-5xx",
      "webhook-4xx", "webhook-unhealthy-hosts", "results-unhealthy-hosts",
      "detector-group-at-maximum",
    ] : anchor => "Runbook: ${var.runbook_url}#alarm-${anchor}"
  }
}

resource "aws_sns_topic" "alarms" {
  name              = "${var.name}-alarms"
  kms_master_key_id = var.kms_key_arn
}

resource "aws_sns_topic_subscription" "email" {
  count     = var.alarm_email == "" ? 0 : 1
  topic_arn = aws_sns_topic.alarms.arn
  protocol  = "email"
  endpoint  = var.alarm_email
}

# Visible and in-flight dead letters alike: the gateway's sweeper answers
# a dead letter (and deletes it) within seconds, but keeps one it cannot
# answer (unreadable, or its record gone) in flight for 12 hours, out of
# its own way; counting only visible ones would miss exactly those.
resource "aws_cloudwatch_metric_alarm" "dlq_not_empty" {
  alarm_name          = "${var.name}-dlq-not-empty"
  alarm_description   = "Jobs failed ${var.queue_name} too many times and reached ${var.dlq_name} (the gateway answers them; those it cannot answer stay there): find why, fix, then redrive or purge. ${local.runbook["dlq-not-empty"]}"
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  actions_enabled     = true
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]

  metric_query {
    id          = "dead"
    expression  = "visible + inflight"
    label       = "dead letters"
    return_data = true
  }

  metric_query {
    id = "visible"
    metric {
      namespace   = "AWS/SQS"
      metric_name = "ApproximateNumberOfMessagesVisible"
      dimensions  = { QueueName = var.dlq_name }
      stat        = "Maximum"
      period      = 60
    }
  }

  metric_query {
    id = "inflight"
    metric {
      namespace   = "AWS/SQS"
      metric_name = "ApproximateNumberOfMessagesNotVisible"
      dimensions  = { QueueName = var.dlq_name }
      stat        = "Maximum"
      period      = 60
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "oldest_message_age" {
  alarm_name          = "${var.name}-oldest-job-age"
  alarm_description   = "The oldest job in ${var.queue_name} has waited more than ${var.oldest_message_age_threshold} s: detectors are not keeping up or not running. ${local.runbook["oldest-job-age"]}"
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateAgeOfOldestMessage"
  dimensions          = { QueueName = var.queue_name }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 3
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.oldest_message_age_threshold
  treat_missing_data  = "notBreaching"
  actions_enabled     = true
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
}

resource "aws_cloudwatch_metric_alarm" "reporter_silent" {
  alarm_name          = "${var.name}-reporter-silent"
  alarm_description   = "No ${var.metric_namespace}/BacklogPerInstance data for 5 minutes: the reporter is down, so the detector group cannot scale. ${local.runbook["reporter-silent"]}"
  namespace           = var.metric_namespace
  metric_name         = "BacklogPerInstance"
  dimensions          = { AutoScalingGroupName = var.detector_asg_name }
  statistic           = "SampleCount"
  period              = 60
  evaluation_periods  = 5
  comparison_operator = "LessThanThreshold"
  threshold           = 1
  treat_missing_data  = "breaching"
  actions_enabled     = true
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
}

# ------------------------------------------------------- load balancers

resource "aws_cloudwatch_metric_alarm" "webhook_5xx" {
  alarm_name          = "${var.name}-webhook-5xx"
  alarm_description   = "The webhook load balancer answered Telegram with 5xx (its own: no healthy gateway; or the gateway's) more than ${var.alb_5xx_threshold} times a minute for 3 minutes: updates are being retried or lost. ${local.runbook["webhook-5xx"]}"
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.alb_5xx_threshold
  evaluation_periods  = 3
  treat_missing_data  = "notBreaching"
  actions_enabled     = true
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]

  metric_query {
    id          = "errors"
    expression  = "elb + target"
    label       = "5xx answers"
    return_data = true
  }

  metric_query {
    id = "elb"
    metric {
      namespace   = "AWS/ApplicationELB"
      metric_name = "HTTPCode_ELB_5XX_Count"
      dimensions  = { LoadBalancer = var.alb_arn_suffix }
      stat        = "Sum"
      period      = 60
    }
  }

  metric_query {
    id = "target"
    metric {
      namespace   = "AWS/ApplicationELB"
      metric_name = "HTTPCode_Target_5XX_Count"
      dimensions  = { LoadBalancer = var.alb_arn_suffix }
      stat        = "Sum"
      period      = 60
    }
  }
}

# Gateways answering Telegram's deliveries with 4xx: the webhook secret in
# the secret and the one registered with Telegram differ (401 on every
# update), or a delivery is refused as malformed. Telegram retries and then
# drops the updates, and nothing else would show it.
resource "aws_cloudwatch_metric_alarm" "webhook_4xx" {
  alarm_name          = "${var.name}-webhook-4xx"
  alarm_description   = "The gateways answered the webhook with 4xx ${var.alb_4xx_threshold} times or more in 5 minutes: most likely the webhook secret Telegram sends no longer matches the gateways' (401), so updates are refused. ${local.runbook["webhook-4xx"]}"
  namespace           = "AWS/ApplicationELB"
  metric_name         = "HTTPCode_Target_4XX_Count"
  dimensions          = { LoadBalancer = var.alb_arn_suffix }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanOrEqualToThreshold"
  threshold           = var.alb_4xx_threshold
  treat_missing_data  = "notBreaching"
  actions_enabled     = true
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
}

# The detector group has run at its maximum size for 15 minutes: target
# tracking wants more detectors than it may have, so the backlog (and the
# users' wait) grows; raise the maximum or find out why jobs got slower.
resource "aws_cloudwatch_metric_alarm" "detector_at_maximum" {
  alarm_name          = "${var.name}-detector-group-at-maximum"
  alarm_description   = "The detector group ${var.detector_asg_name} has had ${var.detector_max_size} (its maximum) detectors in service for 15 minutes: it cannot scale out further while the backlog may still grow. ${local.runbook["detector-group-at-maximum"]}"
  namespace           = "AWS/AutoScaling"
  metric_name         = "GroupInServiceInstances"
  dimensions          = { AutoScalingGroupName = var.detector_asg_name }
  statistic           = "Minimum"
  period              = 300
  evaluation_periods  = 3
  comparison_operator = "GreaterThanOrEqualToThreshold"
  threshold           = var.detector_max_size
  treat_missing_data  = "notBreaching"
  actions_enabled     = true
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
}

locals {
  # The two load balancers in front of the gateways: an unhealthy target
  # behind either means a gateway is failing its readiness check.
  unhealthy_host_alarms = {
    webhook = {
      namespace   = "AWS/ApplicationELB"
      dimensions  = { LoadBalancer = var.alb_arn_suffix, TargetGroup = var.alb_target_group_arn_suffix }
      description = "A gateway behind the webhook load balancer fails its readiness check (/readyz) for 3 minutes: it gets no webhook deliveries. ${local.runbook["webhook-unhealthy-hosts"]}"
    }
    results = {
      namespace   = "AWS/NetworkELB"
      dimensions  = { LoadBalancer = var.results_lb_arn_suffix, TargetGroup = var.results_target_group_arn_suffix }
      description = "A gateway behind the internal Results load balancer fails its readiness check (/readyz) for 3 minutes: detectors cannot report results to it. ${local.runbook["results-unhealthy-hosts"]}"
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "unhealthy_hosts" {
  for_each = local.unhealthy_host_alarms

  alarm_name          = "${var.name}-${each.key}-unhealthy-hosts"
  alarm_description   = each.value.description
  namespace           = each.value.namespace
  metric_name         = "UnHealthyHostCount"
  dimensions          = each.value.dimensions
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 3
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  actions_enabled     = true
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
}
