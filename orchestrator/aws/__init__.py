"""AWS: the one place that builds boto3 clients, bootstrap, preflight, orphans, the emulator, the published permissions."""
