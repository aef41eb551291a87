# The gateway: instances in two availability zones behind the public webhook
# load balancer, plus the internal path for its Results gRPC service: an
# internal Network Load Balancer on port 50051 that only the detectors reach,
# under a private Route 53 name (results.<private zone>), and, when
# operator_ssm_access is on, the operators' way to the gRPC port: Session
# Manager port forwarding to an instance (no address range is opened).
#
# Health: both load balancers check /readyz (the gateway can serve: its
# table, queue, bucket and the Bot API answer), so a gateway that cannot
# serve leaves their target groups. Replacement follows liveness instead:
# the group uses EC2 health plus the container's HEALTHCHECK (/healthz,
# watched on the instance), so a gateway that is alive but not ready (say,
# DynamoDB unreachable from every gateway at once) is not replaced in a
# loop, while a dead or hung one is.

data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  full_name = "${var.name}-gateway"

  # The operators' Session Manager path: the managed core policy on the
  # gateways' role only, and the interface endpoints the agent talks to.
  ssm_policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/AmazonSSMManagedInstanceCore"
  ssm_endpoints  = var.operator_ssm_access && var.operator_ssm_endpoints ? toset(["ssm", "ssmmessages", "ec2messages"]) : toset([])
}

# ------------------------------------------------------ security groups

resource "aws_security_group_rule" "webhook_from_alb" {
  type                     = "ingress"
  description              = "Webhook requests and health checks from the public load balancer"
  security_group_id        = module.service.security_group_id
  source_security_group_id = var.alb_security_group_id
  from_port                = var.http_port
  to_port                  = var.http_port
  protocol                 = "tcp"
}

resource "aws_security_group_rule" "grpc_from_nlb" {
  type                     = "ingress"
  description              = "Results gRPC from the internal load balancer"
  security_group_id        = module.service.security_group_id
  source_security_group_id = aws_security_group.results.id
  from_port                = var.grpc_port
  to_port                  = var.grpc_port
  protocol                 = "tcp"
}

resource "aws_security_group_rule" "health_from_nlb" {
  type                     = "ingress"
  description              = "Health checks (/readyz) from the internal load balancer"
  security_group_id        = module.service.security_group_id
  source_security_group_id = aws_security_group.results.id
  from_port                = var.http_port
  to_port                  = var.http_port
  protocol                 = "tcp"
}

resource "aws_security_group" "results" {
  name_prefix = "${var.name}-results-"
  description = "Internal Results gRPC load balancer: VPC only"
  vpc_id      = var.vpc_id

  ingress {
    description     = "Results gRPC from the detectors only"
    from_port       = var.grpc_port
    to_port         = var.grpc_port
    protocol        = "tcp"
    security_groups = [var.detector_security_group_id]
  }

  egress {
    description = "gRPC to the gateway instances"
    from_port   = var.grpc_port
    to_port     = var.grpc_port
    protocol    = "tcp"
    cidr_blocks = [var.vpc_cidr]
  }

  egress {
    description = "Health checks to the gateway instances"
    from_port   = var.http_port
    to_port     = var.http_port
    protocol    = "tcp"
    cidr_blocks = [var.vpc_cidr]
  }

  lifecycle {
    create_before_destroy = true
  }
}

# ------------------------------------------- internal Results load balancer

resource "aws_lb" "results" {
  #checkov:skip=CKV_AWS_91:NLB access logs only record TLS listeners; this TCP listener carries internal gRPC only, and VPC flow logs already record its connections.
  name                             = "${var.name}-results"
  load_balancer_type               = "network"
  internal                         = true
  subnets                          = var.private_subnet_ids
  security_groups                  = [aws_security_group.results.id]
  enable_cross_zone_load_balancing = true
  enable_deletion_protection       = var.deletion_protection
}

resource "aws_lb_target_group" "results" {
  name_prefix          = "grpc-"
  port                 = var.grpc_port
  protocol             = "TCP"
  target_type          = "instance"
  vpc_id               = var.vpc_id
  deregistration_delay = 30

  health_check {
    enabled             = true
    protocol            = "HTTP"
    port                = tostring(var.http_port)
    path                = var.health_check_path
    healthy_threshold   = 2
    unhealthy_threshold = 2
    interval            = 10
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_lb_listener" "results" {
  load_balancer_arn = aws_lb.results.arn
  port              = var.grpc_port
  protocol          = "TCP"

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.results.arn
  }
}

resource "aws_route53_zone" "private" {
  name    = var.private_zone_name
  comment = "${var.name}: internal names"

  vpc {
    vpc_id = var.vpc_id
  }
}

resource "aws_route53_record" "results" {
  zone_id = aws_route53_zone.private.zone_id
  name    = "results.${var.private_zone_name}"
  type    = "A"

  alias {
    name                   = aws_lb.results.dns_name
    zone_id                = aws_lb.results.zone_id
    evaluate_target_health = true
  }
}

# ------------------------------------------------------------------- IAM

data "aws_iam_policy_document" "gateway" {
  statement {
    sid       = "StoreAndReadImages"
    actions   = ["s3:PutObject", "s3:GetObject"]
    resources = ["${var.bucket_arn}/*"]
  }

  statement {
    sid       = "CheckBucket"
    actions   = ["s3:ListBucket"]
    resources = [var.bucket_arn]
  }

  statement {
    sid = "ForgetListChatVersions"
    # /forget: every version of a chat's objects (ListObjectVersions), and
    # only under a chat's folder (<chat_id>/), never the whole bucket at once.
    actions   = ["s3:ListBucketVersions"]
    resources = [var.bucket_arn]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["*/"]
    }
  }

  statement {
    sid = "ForgetDeleteChatVersions"
    # /forget: DeleteObjects by version id (each version and delete marker),
    # so nothing is left behind a delete marker; DeleteObjects needs
    # s3:DeleteObject always (AWS's API reference). Only the gateway erases
    # a chat; detectors may delete their own results alone.
    actions   = ["s3:DeleteObject", "s3:DeleteObjectVersion"]
    resources = ["${var.bucket_arn}/*"]
  }

  statement {
    sid       = "EnqueueJobs"
    actions   = ["sqs:SendMessage", "sqs:GetQueueAttributes"]
    resources = [var.queue_arn]
  }

  statement {
    sid       = "AnswerDeadLetteredJobs"
    actions   = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes"]
    resources = [var.dlq_arn]
  }

  statement {
    sid = "PredictionsAndDedupe"
    # DeleteItem: releasing a lease (a failed intake or reply) deletes it,
    # and /forget deletes a chat's items; BatchWriteItem: /forget deletes
    # them 25 at a time.
    actions   = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem", "dynamodb:DescribeTable"]
    resources = [var.table_arn]
  }

  statement {
    sid = "PredictionsByChat"
    # ListPredictions and /forget read the chat_id-time index; nothing
    # queries the table itself.
    actions   = ["dynamodb:Query"]
    resources = ["${var.table_arn}/index/*"]
  }

  statement {
    sid = "ReadTelegramAndResultsSecrets"
    # The bot token, webhook secret and operator token; and the Results
    # tokens, which live in a secret of their own that detectors read too.
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [var.secret_arn, var.results_secret_arn]
  }

  statement {
    sid       = "UseDataKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [var.kms_key_arn]
  }
}

# ---------------------------------------------- operator access (opt-in)

# Session Manager reaches an instance through its agent (preinstalled on
# Amazon Linux 2023), which calls the ssm, ssmmessages and ec2messages APIs
# over HTTPS. The private subnets here route to a NAT gateway, so the agent
# works without these endpoints; operator_ssm_endpoints keeps that traffic
# inside the VPC like every other AWS call (and is needed where subnets have
# no NAT route). Only the gateways' security group may reach them.
resource "aws_security_group" "ssm_endpoints" {
  count       = length(local.ssm_endpoints) > 0 ? 1 : 0
  name_prefix = "${var.name}-ssm-endpoints-"
  description = "Session Manager endpoints: HTTPS from the gateways only"
  vpc_id      = var.vpc_id

  ingress {
    description     = "HTTPS from the gateway instances (Session Manager agent)"
    from_port       = 443
    to_port         = 443
    protocol        = "tcp"
    security_groups = [module.service.security_group_id]
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_endpoint" "ssm" {
  for_each            = local.ssm_endpoints
  vpc_id              = var.vpc_id
  vpc_endpoint_type   = "Interface"
  service_name        = "com.amazonaws.${data.aws_region.current.name}.${each.value}"
  subnet_ids          = var.private_subnet_ids
  security_group_ids  = [aws_security_group.ssm_endpoints[0].id]
  private_dns_enabled = true
  tags = {
    Name = "${var.name}-${each.value}"
  }
}

# --------------------------------------------------------------- service

module "service" {
  source = "../service"

  name               = local.full_name
  service            = "gateway"
  subnet_ids         = var.private_subnet_ids
  vpc_id             = var.vpc_id
  instance_type      = var.instance_type
  ami_ssm_parameter  = var.ami_ssm_parameter
  image              = var.image
  ecr_repository_arn = var.ecr_repository_arn
  policy_json        = data.aws_iam_policy_document.gateway.json
  min_size           = var.min_size
  max_size           = var.max_size
  target_group_arns  = [var.alb_target_group_arn, aws_lb_target_group.results.arn]
  # Liveness replaces an instance, readiness only routes (see the top).
  health_check_type   = "EC2"
  report_unhealthy    = true
  managed_policy_arns = var.operator_ssm_access ? [local.ssm_policy_arn] : []
  kms_key_arn         = var.kms_key_arn
  log_retention_days  = var.log_retention_days
  tags                = var.tags

  environment = merge(var.common_environment, {
    OTEL_SERVICE_NAME          = "gateway"
    POLYBOT_HTTP_LISTEN        = "0.0.0.0:${var.http_port}"
    POLYBOT_GRPC_LISTEN        = "0.0.0.0:${var.grpc_port}"
    POLYBOT_TELEGRAM_MODE      = "webhook"
    POLYBOT_TELEGRAM_SECRET_ID = var.secret_arn
    POLYBOT_RESULTS_SECRET_ID  = var.results_secret_arn
    POLYBOT_PUBLIC_URL         = var.public_url
    # Counted in the table, so they hold across the group's instances.
    POLYBOT_USER_PHOTOS_PER_MINUTE = tostring(var.user_photos_per_minute)
    POLYBOT_CHAT_PENDING_LIMIT     = tostring(var.chat_pending_limit)
  })
}
