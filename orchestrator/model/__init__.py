"""The manifest and what it names: settings, HCL reading, the check/hook/policy contract, the built-ins and their catalog, artifacts."""
