# Alarms, sent to an encrypted SNS topic: a message in the
# dead-letter queue, jobs waiting too long, and the reporter going silent
# (without its metric the detector group cannot scale), load balancer 5xx
# answers and unhealthy gateways behind either load balancer.

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

resource "aws_cloudwatch_metric_alarm" "dlq_not_empty" {
  alarm_name          = "${var.name}-dlq-not-empty"
  alarm_description   = "Jobs failed ${var.queue_name} too many times and are in ${var.dlq_name}: inspect them, fix, then redrive."
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = var.dlq_name }
  statistic           = "Maximum"
  period              = 60
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  actions_enabled     = true
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
}

resource "aws_cloudwatch_metric_alarm" "oldest_message_age" {
  alarm_name          = "${var.name}-oldest-job-age"
  alarm_description   = "The oldest job in ${var.queue_name} has waited more than ${var.oldest_message_age_threshold} s: detectors are not keeping up or not running."
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
  alarm_description   = "No ${var.metric_namespace}/BacklogPerInstance data for 5 minutes: the reporter is down, so the detector group cannot scale."
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
  alarm_description   = "The webhook load balancer answered Telegram with 5xx (its own: no healthy gateway; or the gateway's) more than ${var.alb_5xx_threshold} times a minute for 3 minutes: updates are being retried or lost."
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

locals {
  # The two load balancers in front of the gateways: an unhealthy target
  # behind either means a gateway is failing its health check.
  unhealthy_host_alarms = {
    webhook = {
      namespace   = "AWS/ApplicationELB"
      dimensions  = { LoadBalancer = var.alb_arn_suffix, TargetGroup = var.alb_target_group_arn_suffix }
      description = "A gateway behind the webhook load balancer fails its health check (/healthz) for 3 minutes."
    }
    results = {
      namespace   = "AWS/NetworkELB"
      dimensions  = { LoadBalancer = var.results_lb_arn_suffix, TargetGroup = var.results_target_group_arn_suffix }
      description = "A gateway behind the internal Results load balancer fails its health check for 3 minutes: detectors cannot report results to it."
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
