"""Benchmarks: `python -m benchmarks` (or `make bench`) prints one JSON object per line."""
