variable "logs_kms_key_arn" {
  description = "KMS key for log groups (security unit); empty for the CloudWatch default encryption."
  type        = string
}

variable "alerts_kms_key_arn" {
  description = "KMS key of the alert topic and its dead-letter queue (security unit)."
  type        = string
}

variable "log_retention_days" {
  description = "Retention of the application log group."
  type        = number
}

variable "alarm_emails" {
  description = "Addresses subscribed to the alert topic."
  type        = list(string)

  validation {
    condition     = alltrue([for e in var.alarm_emails : can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", e))])
    error_message = "alarm_emails must be e-mail addresses."
  }
}
