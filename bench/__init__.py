"""Benchmarks: delivery (``python -m bench.run``) and plan-only (bench/bench_plan.py)."""
