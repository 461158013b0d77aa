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

Presets (:func:`~leanrec.search.sketch.config.apply_preset`): ``"paper"`` is DiPS as its paper
wrote it (the model-free scorer, no Influence start, no recency prior, ``Q = 50``, an update at
every step); ``"leanrec"`` adds the model-state features with the Influence start and the
recency prior ``β = 1`` (chosen on Beauty's validation users). A field given after the preset
beats the preset's value::

    from leanrec.search.sketch.config import apply_preset

    paper = apply_preset(SketchConfig(epochs=3, learning_rate=5e-3), "paper")
    no_prior = apply_preset(SketchConfig(), "leanrec", without=("recency_prior",))
    result = sketch(SketchExperiment(dataset="beauty-s3rec", config=paper, methods=("dips",)))
    result.summary["preset"]                       # "paper"
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
