# Load balancer access logs (alb_access_logs: staging, prod) go to a bucket
# this unit owns. ALB delivers with SSE-S3 only (it cannot write to SSE-KMS
# buckets). Bucket names are global: the account id keeps it unique, and
# preflight checks that no other account holds the name.

locals {
  alb_logs_bucket = "${local.name.prefix}-alb-logs-${local.name.suffix}-${local.account_id}"
  alb_logs_prefix = local.alb_name

  # Elastic Load Balancing's log-delivery account per region (regions opened
  # before August 2022); newer regions deliver as the logdelivery service.
  elb_log_accounts = {
    "us-east-1"      = "127311923021"
    "us-east-2"      = "033677994240"
    "us-west-1"      = "027434742980"
    "us-west-2"      = "797873946194"
    "af-south-1"     = "098369216593"
    "ap-east-1"      = "754344448648"
    "ap-south-1"     = "718504428378"
    "ap-northeast-1" = "582318560864"
    "ap-northeast-2" = "600734575887"
    "ap-northeast-3" = "383597477331"
    "ap-southeast-1" = "114774131450"
    "ap-southeast-2" = "783225319266"
    "ca-central-1"   = "985666609251"
    "eu-central-1"   = "054676820928"
    "eu-west-1"      = "156460612806"
    "eu-west-2"      = "652711504416"
    "eu-west-3"      = "009996457667"
    "eu-north-1"     = "897822967062"
    "eu-south-1"     = "635631232127"
    "me-south-1"     = "076674570225"
    "sa-east-1"      = "507241528517"
  }
  elb_log_account = lookup(local.elb_log_accounts, local.region, "")
}

resource "aws_s3_bucket" "alb_logs" {
  # checkov:skip=CKV_AWS_18: this is the access-log bucket itself; logging it into itself would loop
  # checkov:skip=CKV_AWS_144: access logs are re-creatable evidence kept for the retention period in-region; no second region
  # checkov:skip=CKV_AWS_145: ALB access logs support SSE-S3 only; an SSE-KMS bucket would receive nothing
  # checkov:skip=CKV2_AWS_62: nothing consumes log-object events; logs are read on demand
  count = var.alb_access_logs ? 1 : 0

  bucket = local.alb_logs_bucket
  # With deletion protection on (the default outside dev) logs survive a
  # destroy; teardown lifts the protection first, and only then are they removed.
  force_destroy = !var.deletion_protection
}

resource "aws_s3_bucket_public_access_block" "alb_logs" {
  count = var.alb_access_logs ? 1 : 0

  bucket                  = aws_s3_bucket.alb_logs[0].id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "alb_logs" {
  count = var.alb_access_logs ? 1 : 0

  bucket = aws_s3_bucket.alb_logs[0].id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_versioning" "alb_logs" {
  count = var.alb_access_logs ? 1 : 0

  bucket = aws_s3_bucket.alb_logs[0].id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "alb_logs" {
  count = var.alb_access_logs ? 1 : 0

  bucket = aws_s3_bucket.alb_logs[0].id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "alb_logs" {
  count = var.alb_access_logs ? 1 : 0

  bucket = aws_s3_bucket.alb_logs[0].id
  rule {
    id     = "expire-access-logs"
    status = "Enabled"
    filter {}
    expiration {
      days = var.log_retention_days
    }
    noncurrent_version_expiration {
      noncurrent_days = 7
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }
}

data "aws_iam_policy_document" "alb_logs" {
  dynamic "statement" {
    for_each = local.elb_log_account == "" ? [] : [local.elb_log_account]
    content {
      sid       = "ElbDeliversAccessLogs"
      actions   = ["s3:PutObject"]
      resources = ["arn:${local.partition}:s3:::${local.alb_logs_bucket}/${local.alb_logs_prefix}/AWSLogs/${local.account_id}/*"]

      principals {
        type        = "AWS"
        identifiers = ["arn:${local.partition}:iam::${statement.value}:root"]
      }
    }
  }

  statement {
    sid       = "LogDeliveryServiceWritesAccessLogs"
    actions   = ["s3:PutObject"]
    resources = ["arn:${local.partition}:s3:::${local.alb_logs_bucket}/${local.alb_logs_prefix}/AWSLogs/${local.account_id}/*"]

    principals {
      type        = "Service"
      identifiers = ["logdelivery.elasticloadbalancing.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }

  dynamic "statement" {
    for_each = var.tls_only_bucket_policy ? [1] : []
    content {
      sid     = "TlsOnly"
      effect  = "Deny"
      actions = ["s3:*"]
      resources = [
        "arn:${local.partition}:s3:::${local.alb_logs_bucket}",
        "arn:${local.partition}:s3:::${local.alb_logs_bucket}/*",
      ]

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
}

resource "aws_s3_bucket_policy" "alb_logs" {
  count = var.alb_access_logs ? 1 : 0

  bucket = aws_s3_bucket.alb_logs[0].id
  policy = data.aws_iam_policy_document.alb_logs.json

  depends_on = [aws_s3_bucket_public_access_block.alb_logs]
}
