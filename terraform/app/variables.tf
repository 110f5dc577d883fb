variable "private_subnet_ids" {
  description = "Private subnets for the tasks (network unit)."
  type        = list(string)
}

variable "app_security_group_id" {
  description = "Task security group (security unit)."
  type        = string
}

variable "data_kms_key_arn" {
  description = "Key of the credentials secret (security unit)."
  type        = string
}

variable "db_secret_arn" {
  description = "The API's credentials secret (database unit): its own user's where rotation is on."
  type        = string
}

variable "rotation_function_name" {
  description = "The database credentials rotation function (database unit); empty where rotation is off."
  type        = string
  default     = ""
}

variable "db_cluster_id" {
  description = "Database cluster, for its CPU alarm (database unit)."
  type        = string
}

variable "target_group_arn" {
  description = "Target group the service registers in (edge unit)."
  type        = string
}

variable "listener_arn" {
  description = "Listener forwarding to the target group (edge unit)."
  type        = string
}

variable "alb_arn_suffix" {
  description = "Load balancer, for its 5xx alarm (edge unit)."
  type        = string
}

variable "log_group_name" {
  description = "Application log group (observability unit)."
  type        = string
}

variable "log_group_arn" {
  description = "Application log group ARN (observability unit)."
  type        = string
}

variable "alerts_topic_arn" {
  description = "Alert topic (observability unit)."
  type        = string
}

variable "container_image" {
  description = "Image of the payments API, pinned by tag or digest."
  type        = string

  validation {
    condition     = !endswith(var.container_image, ":latest") && length(var.container_image) > 0
    error_message = "container_image must be pinned (no :latest)."
  }
}

variable "container_port" {
  description = "Port the API container listens on."
  type        = number
}

variable "task_cpu" {
  description = "Fargate task CPU units."
  type        = number
}

variable "task_memory" {
  description = "Fargate task memory (MiB)."
  type        = number
}

variable "health_check_grace_period_seconds" {
  description = "Seconds a new task may fail load balancer health checks while it starts."
  type        = number
}

variable "desired_count" {
  description = "Tasks the service keeps running."
  type        = number
}

variable "ecr_repository_prefix" {
  description = "Private ECR repositories the tasks may pull from: <account>.dkr.ecr.<region>.amazonaws.com/<prefix>/*."
  type        = string
}

variable "alarm_cpu_threshold" {
  description = "CPU percent above which the ECS and DB CPU alarms fire."
  type        = number
}

variable "alarm_5xx_threshold" {
  description = "ALB 5xx responses per minute above which the alarm fires."
  type        = number
}

variable "logs_kms_key_arn" {
  description = "KMS key for log groups (security unit); empty for the CloudWatch default encryption."
  type        = string
}

variable "log_retention_days" {
  description = "Retention of Container Insights' log group."
  type        = number
}
