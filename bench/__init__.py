"""Benchmarks: `python -m bench` (or `make bench`) measures traces and risk reports and writes BENCHMARKS.md."""
