# One Polybot service on EC2: an IAM role and instance profile with only what
# the service uses, a launch template whose user data runs the service's
# container (restart always), an Auto Scaling Group over the private subnets
# of two availability zones, and the log group the container writes to.

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

data "aws_ssm_parameter" "ami" {
  name = var.ami_ssm_parameter
}

locals {
  region    = data.aws_region.current.name
  asg_arn   = "arn:${data.aws_partition.current.partition}:autoscaling:${local.region}:${data.aws_caller_identity.current.account_id}:autoScalingGroup:*:autoScalingGroupName/${var.name}"
  registry  = split("/", var.image)[0]
  hook_name = "drain"
  tags      = merge(var.tags, { Service = var.service })
}

resource "aws_cloudwatch_log_group" "this" {
  name              = "/polybot/${var.name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
}

# -------------------------------------------------------- security group

# HTTPS out only (AWS APIs through the VPC endpoints, the package
# repositories, the Telegram Bot API through NAT), to any address unless
# open_https_egress is false: then the caller adds narrower rules (the
# detector: the VPC's endpoints only). Callers add the rules their service
# needs with aws_security_group_rule.
resource "aws_security_group" "this" {
  name_prefix = "${var.name}-"
  description = "${var.service} instances"
  vpc_id      = var.vpc_id
  tags        = merge(local.tags, { Name = var.name })

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_security_group_rule" "https_out" {
  count             = var.open_https_egress ? 1 : 0
  type              = "egress"
  description       = "HTTPS to AWS APIs (VPC endpoints), package repositories and the Telegram Bot API (NAT)"
  security_group_id = aws_security_group.this.id
  from_port         = 443
  to_port           = 443
  protocol          = "tcp"
  cidr_blocks       = ["0.0.0.0/0"]
}

# ------------------------------------------------------------------- IAM

data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

data "aws_iam_policy_document" "this" {
  source_policy_documents = [var.policy_json]

  statement {
    sid = "EcrLogin"
    # GetAuthorizationToken has no resource-level permissions.
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }

  statement {
    sid       = "PullOwnImage"
    actions   = ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"]
    resources = [var.ecr_repository_arn]
  }

  statement {
    sid       = "WriteOwnLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.this.arn}:*"]
  }

  dynamic "statement" {
    for_each = var.report_unhealthy ? [1] : []
    content {
      sid       = "ReportOwnInstanceUnhealthy"
      actions   = ["autoscaling:SetInstanceHealth"]
      resources = [local.asg_arn]
    }
  }

  dynamic "statement" {
    for_each = var.drain_on_terminate ? [1] : []
    content {
      sid       = "CompleteOwnLifecycleHook"
      actions   = ["autoscaling:CompleteLifecycleAction"]
      resources = [local.asg_arn]
    }
  }
}

resource "aws_iam_role" "this" {
  name_prefix        = "${var.name}-"
  description        = "Instances of ${var.name}"
  assume_role_policy = data.aws_iam_policy_document.assume.json
  tags               = local.tags
}

resource "aws_iam_role_policy" "this" {
  name   = var.service
  role   = aws_iam_role.this.id
  policy = data.aws_iam_policy_document.this.json
}

# AWS managed policies the caller asks for (the gateway's operator access:
# AmazonSSMManagedInstanceCore, when operator_ssm_access is on).
resource "aws_iam_role_policy_attachment" "managed" {
  for_each   = toset(var.managed_policy_arns)
  role       = aws_iam_role.this.name
  policy_arn = each.value
}

resource "aws_iam_instance_profile" "this" {
  name_prefix = "${var.name}-"
  role        = aws_iam_role.this.name
}

# ------------------------------------------------------- launch template

resource "aws_launch_template" "this" {
  name_prefix            = "${var.name}-"
  description            = "${var.service} container on Amazon Linux 2023"
  image_id               = data.aws_ssm_parameter.ami.insecure_value
  instance_type          = var.instance_type
  update_default_version = true
  vpc_security_group_ids = [aws_security_group.this.id]

  user_data = base64encode(templatefile("${path.module}/templates/user-data.sh.tftpl", {
    region       = local.region
    registry     = local.registry
    image        = var.image
    container    = var.service
    command      = join(" ", var.command)
    environment  = var.environment
    log_group    = aws_cloudwatch_log_group.this.name
    stop_timeout = var.stop_timeout
    drain        = var.drain_on_terminate
    asg_name     = var.name
    hook_name    = local.hook_name
    watch        = var.report_unhealthy
    grace        = var.health_check_grace_period
    failures     = var.unhealthy_after
  }))

  iam_instance_profile {
    arn = aws_iam_instance_profile.this.arn
  }

  # IMDSv2 only, one hop: containers share the host network, so they reach
  # the instance role's credentials, but nothing further away can.
  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }

  monitoring {
    enabled = true
  }

  block_device_mappings {
    device_name = "/dev/xvda"
    ebs {
      volume_size           = var.root_volume_size
      volume_type           = "gp3"
      encrypted             = true
      delete_on_termination = true
    }
  }

  tag_specifications {
    resource_type = "instance"
    tags          = merge(local.tags, { Name = var.name })
  }

  tag_specifications {
    resource_type = "volume"
    tags          = merge(local.tags, { Name = var.name })
  }

  tags = local.tags
}

# ------------------------------------------------------ Auto Scaling Group

resource "aws_autoscaling_group" "this" {
  name                      = var.name
  vpc_zone_identifier       = var.subnet_ids
  min_size                  = var.min_size
  max_size                  = var.max_size
  health_check_type         = var.health_check_type
  health_check_grace_period = var.health_check_grace_period
  default_instance_warmup   = var.instance_warmup
  target_group_arns         = var.target_group_arns
  enabled_metrics           = ["GroupInServiceInstances", "GroupDesiredCapacity", "GroupPendingInstances", "GroupTerminatingInstances"]

  launch_template {
    id      = aws_launch_template.this.id
    version = aws_launch_template.this.latest_version
  }

  dynamic "initial_lifecycle_hook" {
    for_each = var.drain_on_terminate ? [1] : []
    content {
      name                 = local.hook_name
      lifecycle_transition = "autoscaling:EC2_INSTANCE_TERMINATING"
      default_result       = "CONTINUE"
      # Enough for the container's grace period plus the polling interval.
      heartbeat_timeout = var.stop_timeout + 90
    }
  }

  dynamic "tag" {
    for_each = merge(local.tags, { Name = var.name })
    content {
      key                 = tag.key
      value               = tag.value
      propagate_at_launch = true
    }
  }

  # Target tracking (detector) owns the desired capacity; deploys replace
  # instances with an instance refresh, not through Terraform.
  lifecycle {
    ignore_changes = [desired_capacity]
  }
}
