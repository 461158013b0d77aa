"""Throughput and cost measurements.

Run as ``python -m benchmarks.perf.<script>`` from the repository root.
"""
