"""One-off investigations, kept because the design notes cite their findings.

Run as ``python -m benchmarks.probes.<script>`` from the repository root.
"""
