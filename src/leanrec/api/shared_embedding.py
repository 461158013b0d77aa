"""Shared embedding assignment in streaming recommendation (AutoAssign+) from Python: one call
runs the prequential table of AutoAssign+ and its baselines on a stream.

Example::

    from leanrec.api.shared_embedding import assign_shared_embeddings
    from leanrec.search.shared_embedding import SharedEmbeddingExperiment, load_stream_model

    result = assign_shared_embeddings(SharedEmbeddingExperiment(
        dataset="ml-1m-partial", out_dir="runs/shared-embedding-ml-1m",
        methods=("all_unique", "threshold_hierarchy", "autoassign"), seeds=(0,),
    ))
    print(result.table())              # AUC, log loss, cold-ID AUC and end-of-stream bytes
    served = load_stream_model(result.artifacts["model_autoassign_bce"])
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
        :func:`~leanrec.search.shared_embedding.artifact.load_stream_model`).
    """
    return run_experiment(experiment, log=log)


__all__ = ["assign_shared_embeddings"]
