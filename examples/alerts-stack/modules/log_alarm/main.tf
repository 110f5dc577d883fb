# An ordinary module: a consumer's log group, and an alarm that notifies a topic
# when the topic's own deliveries fail.
variable "name" {
  description = "Name of the log group and the alarm."
  type        = string
}

variable "topic_name" {
  description = "The topic whose failed deliveries the alarm watches."
  type        = string
}

variable "topic_arn" {
  description = "Where the alarm notifies."
  type        = string
}

variable "retention_days" {
  description = "Days the log group keeps events."
  type        = number
}

variable "max_failed" {
  description = "Alarm when more notifications than this fail in five minutes."
  type        = number
}

resource "aws_cloudwatch_log_group" "this" {
  name              = "/consumers/${var.name}"
  retention_in_days = var.retention_days
}

resource "aws_cloudwatch_metric_alarm" "failed" {
  alarm_name          = "${var.name}-failed-deliveries"
  namespace           = "AWS/SNS"
  metric_name         = "NumberOfNotificationsFailed"
  dimensions          = { TopicName = var.topic_name }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = var.max_failed
  comparison_operator = "GreaterThanThreshold"
  alarm_actions       = [var.topic_arn]
}

output "log_group_name" {
  value = aws_cloudwatch_log_group.this.name
}

output "alarm_name" {
  value = aws_cloudwatch_metric_alarm.failed.alarm_name
}
