"""The state bucket: its key layout, the journal, the run lock, the audit trail."""
