output "alb_arn" {
  value = aws_lb.main.arn
}

output "alb_arn_suffix" {
  value = aws_lb.main.arn_suffix
}

output "alb_dns_name" {
  value = aws_lb.main.dns_name
}

output "target_group_arn" {
  value = aws_lb_target_group.api.arn
}

output "target_group_arn_suffix" {
  value = aws_lb_target_group.api.arn_suffix
}

output "listener_arn" {
  description = "The listener that forwards to the API: HTTPS when a certificate is set, else HTTP."
  value       = local.https ? aws_lb_listener.https[0].arn : aws_lb_listener.http.arn
}

output "web_acl_arn" {
  value = var.enable_waf ? aws_wafv2_web_acl.main[0].arn : ""
}

output "api_fqdn" {
  value = var.domain_name == "" ? "" : aws_route53_record.api[0].fqdn
}
