"""Benchmarks of the money paths, printed as ratios to the raw-SQL baselines in ../shared/bench.

Run with `make bench`.
"""
