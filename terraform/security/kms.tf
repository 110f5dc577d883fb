# Customer keys, rotation on. In a key policy, Resource "*" means "this key":
# AWS allows nothing narrower there.

locals {
  account_root = "arn:${local.partition}:iam::${local.account_id}:root"
}

# The account administers its keys (so it can never be locked out: it keeps
# PutKeyPolicy) but cannot use them directly: every cryptographic use goes
# through a statement below with its own conditions. A root "kms:*" would let
# any IAM policy grant Decrypt and make those conditions meaningless.
data "aws_iam_policy_document" "key_admin" {
  # checkov:skip=CKV_AWS_356: a key policy: Resource "*" is this key, AWS allows nothing narrower
  # checkov:skip=CKV_AWS_111: a key policy: administration of this key by its own account, no cryptographic use
  # checkov:skip=CKV_AWS_109: a key policy: the account keeps PutKeyPolicy, or it would lock itself out of the key
  statement {
    sid = "AccountAdministersKeyButDoesNotUseIt"
    actions = [
      "kms:CancelKeyDeletion",
      "kms:CreateAlias",
      "kms:DeleteAlias",
      "kms:Describe*",
      "kms:Disable*",
      "kms:Enable*",
      "kms:Get*",
      "kms:List*",
      "kms:PutKeyPolicy",
      "kms:RevokeGrant",
      "kms:RotateKeyOnDemand",
      "kms:ScheduleKeyDeletion",
      "kms:TagResource",
      "kms:UntagResource",
      "kms:UpdateAlias",
      "kms:UpdateKeyDescription",
    ]
    resources = ["*"] # key policy: "*" is this key

    principals {
      type        = "AWS"
      identifiers = [local.account_root]
    }
  }
}

# Principals of this account may use a key only through the named services.
locals {
  via_service_actions = [
    "kms:Encrypt",
    "kms:Decrypt",
    "kms:ReEncrypt*",
    "kms:GenerateDataKey*",
    "kms:DescribeKey",
    "kms:CreateGrant",
  ]
  via_services = {
    # the rotation function's environment is encrypted with the data key too
    data   = ["rds", "secretsmanager", "lambda"]
    alerts = ["sns", "sqs"]
  }
}

data "aws_iam_policy_document" "use_via_services" {
  # checkov:skip=CKV_AWS_356: a key policy: Resource "*" is this key, AWS allows nothing narrower
  # checkov:skip=CKV_AWS_111: a key policy: use by this account only, through the named services only
  for_each = local.via_services

  statement {
    sid       = "UseThroughItsServices"
    actions   = local.via_service_actions
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
      values   = [for service in each.value : "${service}.${local.region}.amazonaws.com"]
    }
  }
}

data "aws_iam_policy_document" "data_key" {
  source_policy_documents = [
    data.aws_iam_policy_document.key_admin.json,
    data.aws_iam_policy_document.use_via_services["data"].json,
  ]
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

    # Exactly this environment's log groups: no pattern, so a copy's groups
    # (staging-pr42) or any other group cannot use this key.
    condition {
      test     = "ArnEquals"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values = [
        for name in values(local.log_group_names) :
        "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:${name}"
      ]
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
  source_policy_documents = [
    data.aws_iam_policy_document.key_admin.json,
    data.aws_iam_policy_document.use_via_services["alerts"].json,
  ]

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
