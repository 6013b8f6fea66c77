"""Alarms: YAML rules, the pure evaluation of CloudWatch semantics, scheduling, notifications."""
