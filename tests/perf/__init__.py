"""Benchmarks (issue 8): not collected by pytest. Run ``python -m tests.perf.run [--quick]``."""
