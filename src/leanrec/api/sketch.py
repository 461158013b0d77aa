"""Learned sketching (DiPS) from Python: one call runs the paper-style table.

Example::

    from leanrec.api.sketch import sketch
    from leanrec.search.sketch import SketchConfig, SketchExperiment

    result = sketch(SketchExperiment(
        dataset="ml-1m", out_dir="runs/sketch-ml-1m", methods=("random", "dips"),
        sketch_sizes=(2, 4), update_periods=(1,), seeds=(0,), config=SketchConfig(epochs=3),
    ))
    print(result.table())                          # RMSE per (τ, K) and method
    result.artifacts["policy_dips_K2_tau1"]        # the learned policy, for StreamingSketcher
"""

from __future__ import annotations

from leanrec.runner.rundir import Log
from leanrec.search.base import ExperimentResult
from leanrec.search.sketch.config import SketchExperiment
from leanrec.search.sketch.experiment import run_experiment


def sketch(experiment: SketchExperiment, log: Log = print) -> ExperimentResult:
    """Run (or resume) the sketching experiment: every method x ``K`` x ``τ`` x seed of
    ``experiment``, trained on each seed's training users, the epoch chosen on its validation
    users, the test users streamed once at the end.

    Returns:
        The rows, the summary (``results.json``) and the learned policies as artefacts
        (``policy_<method>_K<K>_tau<τ>``, the files ``StreamingSketcher.from_policy`` reads).
    """
    return run_experiment(experiment, log=log)


__all__ = ["sketch"]
