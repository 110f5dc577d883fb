"""Deployment orchestrator for Terraform on AWS."""

__version__ = "0.1.0"
