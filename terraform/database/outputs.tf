output "cluster_id" {
  value = aws_rds_cluster.main.cluster_identifier
}

output "cluster_arn" {
  value = aws_rds_cluster.main.arn
}

output "cluster_endpoint" {
  value = aws_rds_cluster.main.endpoint
}

output "reader_endpoint" {
  value = aws_rds_cluster.main.reader_endpoint
}

output "db_port" {
  value = aws_rds_cluster.main.port
}

output "db_name" {
  value = aws_rds_cluster.main.database_name
}

output "secret_arn" {
  value = aws_secretsmanager_secret.db.arn
}

# The secret the API reads: its own user's where rotation is on; the master
# secret where it is off (dev: no in-VPC function to create the user).
output "app_secret_arn" {
  value = var.enable_rotation ? aws_secretsmanager_secret.app[0].arn : aws_secretsmanager_secret.db.arn
}

output "rotation_function_arn" {
  value = var.enable_rotation ? aws_lambda_function.rotation[0].arn : ""
}

output "rotation_function_name" {
  value = var.enable_rotation ? aws_lambda_function.rotation[0].function_name : ""
}
