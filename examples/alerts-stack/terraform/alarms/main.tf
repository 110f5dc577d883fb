module "consumer" {
  source         = "../../modules/log_alarm"
  name           = "${local.name}-consumer"
  topic_name     = var.topic_name
  topic_arn      = var.topic_arn
  retention_days = var.log_retention_days
  max_failed     = var.max_failed_deliveries
}

variable "topic_name" {
  type = string
}

variable "topic_arn" {
  type = string
}

variable "log_retention_days" {
  type = number
}

variable "max_failed_deliveries" {
  type = number
}

output "log_group_name" {
  value = module.consumer.log_group_name
}

output "alarm_name" {
  value = module.consumer.alarm_name
}

output "topic_arn" {
  description = "Where the alarm notifies."
  value       = var.topic_arn
}
