"""CI: the generated pipelines, the per-unit jobs, the review comment."""
