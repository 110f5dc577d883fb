module "alerts" {
  source = "../../modules/topic"
  name   = "${local.name}-alerts"
}

output "topic_arn" {
  value = module.alerts.arn
}

output "topic_name" {
  value = module.alerts.name
}
