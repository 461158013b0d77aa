"""Adaptive neural architectures per recommendation session from Python: one call runs the
controller and its baselines over a stream cut into sessions.

Example::

    from leanrec.api import adapt_architecture
    from leanrec.models import load_model
    from leanrec.search.adaptive import AdaptiveExperiment

    result = adapt_architecture(AdaptiveExperiment(
        dataset="ml-100k", out_dir="runs/adaptive-ml-100k", seeds=(0,),
    ))
    print(result.table())          # AUC, tower parameters, model bytes, cost per session
    served = load_model(result.artifacts["model_adaptive_leanrec"]).stream
    served.predict({"user": [196], "item": [242]})
"""

from __future__ import annotations

from leanrec.runner.rundir import Log
from leanrec.search.adaptive.config import AdaptiveExperiment
from leanrec.search.adaptive.experiment import run_experiment
from leanrec.search.base import ExperimentResult


def adapt_architecture(experiment: AdaptiveExperiment, log: Log = print) -> ExperimentResult:
    """Run (or resume) the adaptive-architecture experiment: the headline ``λ`` chosen on the
    warm-up sessions, then every method over the whole stream, session by session.

    Returns:
        The rows (one per method, ``λ`` and seed, with per-session figures), the summary
        (``results.json``) and, per controller preset that ran (``adaptive``: paper,
        ``adaptive_leanrec``), the first seed's model at its headline ``λ`` after the last
        session as artefact (``model_adaptive``, ``model_adaptive_leanrec``, read back with
        :func:`leanrec.models.load_model`, which needs no ``leanrec.search``).
    """
    return run_experiment(experiment, log=log)


__all__ = ["adapt_architecture"]
