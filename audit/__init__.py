"""The audit trail: recorder, redaction, hash-chained log, lookup."""
