# Customer keys, rotation on. In a key policy, Resource "*" means "this key":
# AWS allows nothing narrower there.

locals {
  account_root = "arn:${local.partition}:iam::${local.account_id}:root"
}

data "aws_iam_policy_document" "key_admin" {
  # checkov:skip=CKV_AWS_109: key policy: the account root administers its own key; "*" is this key
  # checkov:skip=CKV_AWS_111: key policy: the account root administers its own key; "*" is this key
  # checkov:skip=CKV_AWS_356: key policy: "*" is this key, AWS allows nothing narrower
  statement {
    sid       = "AccountAdministersKey"
    actions   = ["kms:*"]
    resources = ["*"] # key policy: "*" is this key

    principals {
      type        = "AWS"
      identifiers = [local.account_root]
    }
  }
}

# Database storage, Performance Insights and the credentials secret.
data "aws_iam_policy_document" "data_key" {
  source_policy_documents = [data.aws_iam_policy_document.key_admin.json]

  statement {
    sid = "UseThroughRdsAndSecretsManager"
    actions = [
      "kms:Encrypt",
      "kms:Decrypt",
      "kms:ReEncrypt*",
      "kms:GenerateDataKey*",
      "kms:DescribeKey",
      "kms:CreateGrant",
    ]
    resources = ["*"] # key policy: "*" is this key

    principals {
      type        = "AWS"
      identifiers = [local.account_root]
    }

    condition {
      test     = "StringEquals"
      variable = "kms:CallerAccount"
      values   = [local.account_id]
    }

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values = [
        "rds.${local.region}.amazonaws.com",
        "secretsmanager.${local.region}.amazonaws.com",
      ]
    }
  }
}

resource "aws_kms_key" "data" {
  description             = "${local.name.prefix} ${local.name.suffix}: database storage and credentials"
  enable_key_rotation     = true
  deletion_window_in_days = var.kms_deletion_window_days
  policy                  = data.aws_iam_policy_document.data_key.json

  tags = {
    Name = "${local.name.prefix}-data-key-${local.name.suffix}"
  }
}

resource "aws_kms_alias" "data" {
  name          = "alias/${local.name.prefix}-data-${local.name.suffix}"
  target_key_id = aws_kms_key.data.key_id
}

# CloudWatch Logs: only for log groups of this environment.
data "aws_iam_policy_document" "logs_key" {
  source_policy_documents = [data.aws_iam_policy_document.key_admin.json]

  statement {
    sid = "CloudWatchLogsOfThisEnvironment"
    actions = [
      "kms:Encrypt*",
      "kms:Decrypt*",
      "kms:ReEncrypt*",
      "kms:GenerateDataKey*",
      "kms:Describe*",
    ]
    resources = ["*"] # key policy: "*" is this key

    principals {
      type        = "Service"
      identifiers = ["logs.${local.region}.amazonaws.com"]
    }

    condition {
      test     = "ArnLike"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = ["arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:*${local.name.prefix}-*-${local.name.suffix}*"]
    }
  }
}

resource "aws_kms_key" "logs" {
  count = var.kms_encrypted_logs ? 1 : 0

  description             = "${local.name.prefix} ${local.name.suffix}: CloudWatch Logs"
  enable_key_rotation     = true
  deletion_window_in_days = var.kms_deletion_window_days
  policy                  = data.aws_iam_policy_document.logs_key.json

  tags = {
    Name = "${local.name.prefix}-logs-key-${local.name.suffix}"
  }
}

resource "aws_kms_alias" "logs" {
  count = var.kms_encrypted_logs ? 1 : 0

  name          = "alias/${local.name.prefix}-logs-${local.name.suffix}"
  target_key_id = aws_kms_key.logs[0].key_id
}

# Alerts: SNS topic and its SQS dead-letter queue; CloudWatch alarms publish.
data "aws_iam_policy_document" "alerts_key" {
  source_policy_documents = [data.aws_iam_policy_document.key_admin.json]

  statement {
    sid       = "AlarmsAndSnsOfThisAccount"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey*"]
    resources = ["*"] # key policy: "*" is this key

    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com", "sns.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_kms_key" "alerts" {
  description             = "${local.name.prefix} ${local.name.suffix}: alert topic and dead-letter queue"
  enable_key_rotation     = true
  deletion_window_in_days = var.kms_deletion_window_days
  policy                  = data.aws_iam_policy_document.alerts_key.json

  tags = {
    Name = "${local.name.prefix}-alerts-key-${local.name.suffix}"
  }
}

resource "aws_kms_alias" "alerts" {
  name          = "alias/${local.name.prefix}-alerts-${local.name.suffix}"
  target_key_id = aws_kms_key.alerts.key_id
}
