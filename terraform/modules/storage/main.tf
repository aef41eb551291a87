# Data at rest: the KMS key, the images bucket (plus a bucket for access
# logs), the jobs queue and its dead-letter queue, the predictions table, the
# Telegram secret, the Results tokens' secret and the container image
# repositories.

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}
data "aws_elb_service_account" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.name
  # Bucket names are global: the account id and region make them unique
  # without hard-coding either.
  images_bucket = "${var.name}-images-${local.account_id}-${local.region}"
  logs_bucket   = "${var.name}-logs-${local.account_id}-${local.region}"
  # Where S3 writes the images bucket's access logs; the logs bucket's
  # policy lets the logging service write exactly there.
  images_access_log_prefix = "s3/${local.images_bucket}/"
}

# ---------------------------------------------------------------- KMS key

data "aws_iam_policy_document" "kms" {
  #checkov:skip=CKV_AWS_109:This is a KMS key policy: "*" means this key only, and the account root statement is what lets IAM policies grant use of the key.
  #checkov:skip=CKV_AWS_111:This is a KMS key policy: "*" means this key only; writes are limited to the account and to named AWS services.
  #checkov:skip=CKV_AWS_356:This is a KMS key policy: the resource of a key policy is always the key itself, written "*".
  statement {
    sid       = "AccountAdministersKeyThroughIam"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }
  }

  statement {
    sid       = "CloudWatchLogsEncryptsOurLogGroups"
    actions   = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["logs.${local.region}.amazonaws.com"]
    }
    condition {
      test     = "ArnLike"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = ["arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:*"]
    }
  }

  statement {
    sid       = "CloudWatchAlarmsPublishToEncryptedTopic"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey*"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com"]
    }
  }
}

resource "aws_kms_key" "this" {
  description             = "${var.name}: images, predictions table, Telegram secret, logs and alarms"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.kms.json
}

resource "aws_kms_alias" "this" {
  name          = "alias/${var.name}"
  target_key_id = aws_kms_key.this.key_id
}

# ------------------------------------------------------------ logs bucket

resource "aws_s3_bucket" "logs" {
  #checkov:skip=CKV_AWS_144:Access logs are operational data for this region only; cross-region replication doubles cost without a recovery need.
  #checkov:skip=CKV_AWS_145:ALB access logs can only be delivered to buckets encrypted with SSE-S3 (AES256), not SSE-KMS.
  #checkov:skip=CKV2_AWS_62:Nothing consumes events for log objects; they are read on demand.
  bucket        = local.logs_bucket
  force_destroy = !var.deletion_protection
}

resource "aws_s3_bucket_ownership_controls" "logs" {
  bucket = aws_s3_bucket.logs.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "logs" {
  bucket                  = aws_s3_bucket.logs.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "logs" {
  bucket = aws_s3_bucket.logs.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "logs" {
  bucket = aws_s3_bucket.logs.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "logs" {
  bucket = aws_s3_bucket.logs.id
  rule {
    id     = "expire-logs"
    status = "Enabled"
    filter {}
    expiration {
      days = var.log_retention_days
    }
    noncurrent_version_expiration {
      noncurrent_days = 7
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }
}

data "aws_iam_policy_document" "logs_bucket" {
  statement {
    sid       = "AlbAccessLogs"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.logs.arn}/alb/AWSLogs/${local.account_id}/*"]
    principals {
      type        = "AWS"
      identifiers = [data.aws_elb_service_account.current.arn]
    }
  }

  statement {
    sid       = "S3ServerAccessLogs"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.logs.arn}/${local.images_access_log_prefix}*"]
    principals {
      type        = "Service"
      identifiers = ["logging.s3.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.logs.arn, "${aws_s3_bucket.logs.arn}/*"]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "logs" {
  bucket = aws_s3_bucket.logs.id
  policy = data.aws_iam_policy_document.logs_bucket.json
  # The public access block must exist first, or the policy briefly applies
  # to a bucket without it.
  depends_on = [aws_s3_bucket_public_access_block.logs]
}

# ---------------------------------------------------------- images bucket

resource "aws_s3_bucket" "images" {
  #checkov:skip=CKV_AWS_144:Images are short-lived (lifecycle-expired) per-region working data; each region is an independent deployment, so replication adds cost without a recovery need.
  #checkov:skip=CKV2_AWS_62:Jobs are enqueued explicitly by the gateway through SQS; S3 event notifications would duplicate them.
  bucket        = local.images_bucket
  force_destroy = !var.deletion_protection
}

resource "aws_s3_bucket_ownership_controls" "images" {
  bucket = aws_s3_bucket.images.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "images" {
  bucket                  = aws_s3_bucket.images.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "images" {
  bucket = aws_s3_bucket.images.id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "images" {
  bucket = aws_s3_bucket.images.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = aws_kms_key.this.arn
    }
    bucket_key_enabled = true
  }
}

# The retention clock (var.retention_days, the services' POLYBOT_RETENTION_DAYS)
# in a versioned bucket. Expiring a current version only hides it behind a
# delete marker, so three things keep anything from outliving the clock:
#
# - every object's current version expires retention_days after it was
#   written;
# - a version that is no longer current (expired by the rule above,
#   overwritten by a retried job, or deleted by a detector without its
#   version id) is removed permanently one day later, the shortest S3 allows.
#   Measured from the day it stopped being current, so retention_days here
#   would let an expired image live twice the clock; one day means at most
#   retention_days + 1, within the day or two S3 (and DynamoDB's TTL) take
#   to act anyway;
# - a delete marker left with no versions behind it (it still names the
#   chat in its key) is removed by the second rule, as soon as it is alone.
#
# The gateway's /forget deletes a chat's versions by version id at once.
resource "aws_s3_bucket_lifecycle_configuration" "images" {
  bucket = aws_s3_bucket.images.id
  rule {
    id     = "retention"
    status = "Enabled"
    filter {}
    expiration {
      days = var.retention_days
    }
    noncurrent_version_expiration {
      noncurrent_days = 1
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }

  # S3 refuses Days and ExpiredObjectDeleteMarker in one expiration, hence a
  # rule of its own.
  rule {
    id     = "remove-expired-delete-markers"
    status = "Enabled"
    filter {}
    expiration {
      expired_object_delete_marker = true
    }
  }
}

resource "aws_s3_bucket_logging" "images" {
  bucket        = aws_s3_bucket.images.id
  target_bucket = aws_s3_bucket.logs.id
  target_prefix = local.images_access_log_prefix
  # S3 refuses a logging target whose policy does not yet let the logging
  # service write (InvalidTargetBucketForLogging): the policy comes first.
  depends_on = [aws_s3_bucket_policy.logs]
}

data "aws_iam_policy_document" "images_bucket" {
  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.images.arn, "${aws_s3_bucket.images.arn}/*"]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "images" {
  bucket     = aws_s3_bucket.images.id
  policy     = data.aws_iam_policy_document.images_bucket.json
  depends_on = [aws_s3_bucket_public_access_block.images]
}

# ------------------------------------------------------------- SQS queues

resource "aws_sqs_queue" "dlq" {
  name                      = "${var.name}-jobs-dlq"
  message_retention_seconds = 1209600 # 14 days, the maximum: time to inspect failures
  sqs_managed_sse_enabled   = true
}

resource "aws_sqs_queue" "jobs" {
  name                       = "${var.name}-jobs"
  visibility_timeout_seconds = var.queue_visibility_timeout
  receive_wait_time_seconds  = 20 # long polling
  message_retention_seconds  = 345600
  sqs_managed_sse_enabled    = true
  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.dlq.arn
    maxReceiveCount     = var.queue_max_receive_count
  })
}

resource "aws_sqs_queue_redrive_allow_policy" "dlq" {
  queue_url = aws_sqs_queue.dlq.id
  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = [aws_sqs_queue.jobs.arn]
  })
}

# -------------------------------------------------------- DynamoDB table

resource "aws_dynamodb_table" "predictions" {
  name                        = "${var.name}-predictions"
  billing_mode                = "PAY_PER_REQUEST"
  hash_key                    = "pk"
  deletion_protection_enabled = var.deletion_protection

  attribute {
    name = "pk"
    type = "S"
  }

  attribute {
    name = "chat_id"
    type = "N"
  }

  attribute {
    name = "time"
    type = "N"
  }

  global_secondary_index {
    name            = "chat_id-time-index"
    hash_key        = "chat_id"
    range_key       = "time"
    projection_type = "ALL"
  }

  ttl {
    attribute_name = "expires_at"
    enabled        = true
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = aws_kms_key.this.arn
  }
}

# --------------------------------------------------------- Telegram secret

# Terraform creates the secret but never its value, so the bot token is not
# in the state: set it with `aws secretsmanager put-secret-value` (see
# docs/deploy.md). SecretString is JSON:
# {"telegram_token":"...","webhook_secret":"...","operator_token":"..."}
# (the Results tokens have a secret of their own, below).
resource "aws_secretsmanager_secret" "telegram" {
  #checkov:skip=CKV2_AWS_57:A Telegram bot token is issued by @BotFather and cannot be rotated by a rotation Lambda; rotate it by hand (/revoke, then put-secret-value).
  name                    = "${var.name}/telegram"
  description             = "Telegram bot token and webhook secret for ${var.name}"
  kms_key_id              = aws_kms_key.this.arn
  recovery_window_in_days = var.secret_recovery_window_days
}

# ---------------------------------------------------------- Results secret

# The Results tokens alone, JSON {"results_token":"...","results_token_previous":"..."}
# (the second only while rotating; docs/RUNBOOK.md). The detectors decode
# untrusted files in C code, so their role may read this secret and not the
# Telegram one, which holds the bot token and the operator token. The
# gateways read both; this one's fields take precedence
# (POLYBOT_RESULTS_SECRET_ID). Like the Telegram secret, Terraform never
# writes its value.
resource "aws_secretsmanager_secret" "results" {
  #checkov:skip=CKV2_AWS_57:A rotation Lambda cannot roll the gateways and detectors in the order the two-token rotation needs (docs/RUNBOOK.md); it is rotated by hand.
  name                    = "${var.name}/results"
  description             = "Results gRPC tokens for ${var.name} (detectors present results_token to the gateways)"
  kms_key_id              = aws_kms_key.this.arn
  recovery_window_in_days = var.secret_recovery_window_days
}

# ------------------------------------------------------ image repositories

resource "aws_ecr_repository" "service" {
  for_each             = toset(var.ecr_repositories)
  name                 = "${var.name}/${each.value}"
  image_tag_mutability = "IMMUTABLE"
  force_delete         = !var.deletion_protection

  image_scanning_configuration {
    scan_on_push = true
  }

  encryption_configuration {
    encryption_type = "KMS"
  }
}

resource "aws_ecr_lifecycle_policy" "service" {
  for_each   = aws_ecr_repository.service
  repository = each.value.name
  policy = jsonencode({
    rules = [{
      rulePriority = 1
      description  = "Keep the 30 most recent images"
      selection = {
        tagStatus   = "any"
        countType   = "imageCountMoreThan"
        countNumber = 30
      }
      action = { type = "expire" }
    }]
  })
}
