"""leanrec's benchmark scripts, sorted by purpose; run each as a module from the repository root.

- ``benchmarks.paper``: the policies' paper-style tables and the substrate's reference runs;
- ``benchmarks.peers``: leanrec against RecBole and DeepCTR-Torch, and their environment builders;
- ``benchmarks.perf``: throughput and cost;
- ``benchmarks.probes``: one-off investigations whose findings the design notes cite.

``benchmarks.common`` holds what they share; results go to ``benchmarks/results/`` (see there).
"""
