"""The `decision_log_import` migration job: legacy decision logs (CSV, JSON Lines, a PostgreSQL
query) checked row by row, deduplicated per tenant, and copied into the decision log as
imported legacy decisions, resumable from the last committed batch."""
