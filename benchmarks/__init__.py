"""Benchmarks: measured as ratios against a baseline run on the same machine in the same run."""
