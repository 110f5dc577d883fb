"""Terraform: the one place that runs it (and its shim), its CLI configuration, the providers, the machine's slots."""
