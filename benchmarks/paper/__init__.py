"""The policies' paper-style tables and the substrate's reference runs.

Run as ``python -m benchmarks.paper.<script>`` from the repository root.
"""
