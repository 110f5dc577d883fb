output "log_group_name" {
  value = aws_cloudwatch_log_group.app.name
}

output "log_group_arn" {
  value = aws_cloudwatch_log_group.app.arn
}

output "alerts_topic_arn" {
  value = aws_sns_topic.alerts.arn
}

output "alerts_dlq_arn" {
  value = aws_sqs_queue.alerts_dlq.arn
}

output "alerts_dlq_url" {
  value = aws_sqs_queue.alerts_dlq.id
}
