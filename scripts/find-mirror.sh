#!/usr/bin/env bash
# Prints the Terraform filesystem mirror that holds hashicorp/aws: the
# ORCHESTRATOR_PROVIDER_MIRROR setting if given, else the machine's mirror.
set -euo pipefail
if [ -n "${ORCHESTRATOR_PROVIDER_MIRROR:-}" ]; then
  echo "$ORCHESTRATOR_PROVIDER_MIRROR"; exit 0
fi
for d in /opt/tf-plugins /usr/share/terraform/plugins "$HOME/.terraform.d/plugins" "$HOME/.local/share/terraform/plugins"; do
  if [ -d "$d/registry.terraform.io/hashicorp/aws" ]; then echo "$d"; exit 0; fi
done
bin=$(find / -path /proc -prune -o -path '*/registry.terraform.io/hashicorp/aws/*' -name 'terraform-provider-aws*' -print 2>/dev/null | head -1)
if [ -n "$bin" ]; then
  echo "${bin%%/registry.terraform.io/*}"; exit 0
fi
exit 1
