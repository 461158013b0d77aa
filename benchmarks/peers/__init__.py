"""leanrec against peer libraries (RecBole, DeepCTR-Torch) in one run, and the peers' venvs.

Run as ``python -m benchmarks.peers.<script>`` from the repository root.
"""
