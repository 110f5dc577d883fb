resource "aws_cloudwatch_log_group" "app" {
  # checkov:skip=CKV_AWS_158: KMS-encrypted with the logs key when kms_encrypted_logs (a validation requires it outside dev); dev uses CloudWatch's default encryption
  name              = local.log_group_names.app
  retention_in_days = var.log_retention_days
  kms_key_id        = var.logs_kms_key_arn == "" ? null : var.logs_kms_key_arn
}

# Alerts: SNS topic (KMS) -> e-mail subscriptions; what SNS cannot deliver
# lands in an encrypted SQS dead-letter queue instead of being lost.
resource "aws_sqs_queue" "alerts_dlq" {
  name                              = "${local.name.prefix}-alerts-dlq-${local.name.suffix}"
  message_retention_seconds         = 1209600
  kms_master_key_id                 = var.alerts_kms_key_arn
  kms_data_key_reuse_period_seconds = 300
}

resource "aws_sns_topic" "alerts" {
  name              = "${local.name.prefix}-alerts-${local.name.suffix}"
  kms_master_key_id = var.alerts_kms_key_arn
}

data "aws_iam_policy_document" "dlq" {
  statement {
    sid       = "SnsDeadLettersFromOwnTopic"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.alerts_dlq.arn]

    principals {
      type        = "Service"
      identifiers = ["sns.amazonaws.com"]
    }

    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [aws_sns_topic.alerts.arn]
    }
  }
}

resource "aws_sqs_queue_policy" "alerts_dlq" {
  queue_url = aws_sqs_queue.alerts_dlq.id
  policy    = data.aws_iam_policy_document.dlq.json
}

data "aws_iam_policy_document" "topic" {
  statement {
    sid       = "AlarmsOfThisAccountPublish"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.alerts.arn]

    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_sns_topic_policy" "alerts" {
  arn    = aws_sns_topic.alerts.arn
  policy = data.aws_iam_policy_document.topic.json
}

resource "aws_sns_topic_subscription" "email" {
  for_each = toset(var.alarm_emails)

  topic_arn = aws_sns_topic.alerts.arn
  protocol  = "email"
  endpoint  = each.value
  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.alerts_dlq.arn
  })

  depends_on = [aws_sqs_queue_policy.alerts_dlq]
}

# An alert that SNS could not deliver is an alert nobody saw: any message in
# the dead-letter queue raises this alarm.
resource "aws_cloudwatch_metric_alarm" "alerts_dlq" {
  alarm_name          = "${local.name.prefix}-alerts-dlq-${local.name.suffix}"
  alarm_description   = "Undeliverable alerts are waiting in ${aws_sqs_queue.alerts_dlq.name}"
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = aws_sqs_queue.alerts_dlq.name }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alerts.arn]
}
