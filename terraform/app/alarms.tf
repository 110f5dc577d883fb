resource "aws_cloudwatch_metric_alarm" "alb_5xx" {
  alarm_name          = "${local.name.prefix}-alb-5xx-${local.name.suffix}"
  alarm_description   = "Load balancer 5xx responses"
  namespace           = "AWS/ApplicationELB"
  metric_name         = "HTTPCode_ELB_5XX_Count"
  dimensions          = { LoadBalancer = var.alb_arn_suffix }
  statistic           = "Sum"
  period              = 60
  evaluation_periods  = 5
  threshold           = var.alarm_5xx_threshold
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [var.alerts_topic_arn]
  ok_actions          = [var.alerts_topic_arn]
}

resource "aws_cloudwatch_metric_alarm" "ecs_cpu" {
  alarm_name          = "${local.name.prefix}-ecs-cpu-${local.name.suffix}"
  alarm_description   = "API service CPU"
  namespace           = "AWS/ECS"
  metric_name         = "CPUUtilization"
  dimensions          = { ClusterName = aws_ecs_cluster.main.name, ServiceName = aws_ecs_service.api.name }
  statistic           = "Average"
  period              = 60
  evaluation_periods  = 5
  threshold           = var.alarm_cpu_threshold
  comparison_operator = "GreaterThanThreshold"
  alarm_actions       = [var.alerts_topic_arn]
  ok_actions          = [var.alerts_topic_arn]
}

resource "aws_cloudwatch_metric_alarm" "db_cpu" {
  alarm_name          = "${local.name.prefix}-db-cpu-${local.name.suffix}"
  alarm_description   = "Database cluster CPU"
  namespace           = "AWS/RDS"
  metric_name         = "CPUUtilization"
  dimensions          = { DBClusterIdentifier = var.db_cluster_id }
  statistic           = "Average"
  period              = 60
  evaluation_periods  = 5
  threshold           = var.alarm_cpu_threshold
  comparison_operator = "GreaterThanThreshold"
  alarm_actions       = [var.alerts_topic_arn]
  ok_actions          = [var.alerts_topic_arn]
}

# A failed rotation leaves the old password in use and tells nobody: the
# rotation function's errors page the on-call (where rotation is on).
resource "aws_cloudwatch_metric_alarm" "db_rotation_errors" {
  count = var.rotation_function_name == "" ? 0 : 1

  alarm_name          = "${local.name.prefix}-db-rotation-errors-${local.name.suffix}"
  alarm_description   = "The database credentials rotation function failed: see /aws/lambda/${var.rotation_function_name}"
  namespace           = "AWS/Lambda"
  metric_name         = "Errors"
  dimensions          = { FunctionName = var.rotation_function_name }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [var.alerts_topic_arn]
  ok_actions          = [var.alerts_topic_arn]
}
