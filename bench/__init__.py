"""Benchmark workloads, baselines and reports for lrpilot."""
