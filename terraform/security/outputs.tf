output "alb_security_group_id" {
  value = aws_security_group.alb.id
}

output "app_security_group_id" {
  value = aws_security_group.app.id
}

output "db_security_group_id" {
  value = aws_security_group.db.id
}

output "rotation_security_group_id" {
  value = aws_security_group.rotation.id
}

output "data_kms_key_arn" {
  value = aws_kms_key.data.arn
}

output "logs_kms_key_arn" {
  description = "Empty when kms_encrypted_logs is off."
  value       = var.kms_encrypted_logs ? aws_kms_key.logs[0].arn : ""
}

output "alerts_kms_key_arn" {
  value = aws_kms_key.alerts.arn
}
