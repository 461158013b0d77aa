"""Shared embedding assignment in streaming recommendation (AutoAssign+) from Python: one call
runs the prequential table of AutoAssign+ and its baselines on a stream.

Example::

    from leanrec.api import assign_shared_embeddings
    from leanrec.models import load_model
    from leanrec.search.shared_embedding import SharedEmbeddingExperiment

    result = assign_shared_embeddings(SharedEmbeddingExperiment(
        dataset="ml-1m-partial", out_dir="runs/shared-embedding-ml-1m",
        methods=("all_unique", "threshold_hierarchy", "autoassign"), seeds=(0,),
    ))
    print(result.table())              # AUC, log loss, cold-ID AUC and end-of-stream bytes
    served = load_model(result.artifacts["model_autoassign_bce"]).stream
    served.predict({"user": [6041], "item": [1193]})   # a user never seen: level 1's vector
"""

from __future__ import annotations

from leanrec.runner.rundir import Log
from leanrec.search.base import ExperimentResult
from leanrec.search.shared_embedding.config import SharedEmbeddingExperiment
from leanrec.search.shared_embedding.experiment import run_experiment


def assign_shared_embeddings(
    experiment: SharedEmbeddingExperiment, log: Log = print
) -> ExperimentResult:
    """Run (or resume) the shared-embedding experiment: every method's knob chosen on the
    warm-up, then the whole stream test-then-train for each method and seed.

    Returns:
        The rows, the summary (``results.json``) and the first seed's AutoAssign+ model with
        its assignment as artefacts (``model_autoassign_<objective>``, read back with
        :func:`leanrec.models.load_model`, which needs no ``leanrec.search``).
    """
    return run_experiment(experiment, log=log)


__all__ = ["assign_shared_embeddings"]
