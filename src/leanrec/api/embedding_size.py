"""Embedding-size search (CIESS) from Python: one call runs the paper's Table 1 experiment.

Example::

    from leanrec.api.embedding_size import search_embedding_sizes
    from leanrec.search.embedding_size import CIESSConfig, EmbeddingSizeExperiment

    result = search_embedding_sizes(EmbeddingSizeExperiment(
        dataset="ml-1m", model="lightgcn", out_dir="runs/embedding-size-ml-1m",
        methods=("ciess", "su", "magprune"), search=CIESSConfig(target_sparsities=(0.9,)),
    ))
    print(result.table())                      # Recall / NDCG per method and budget
    result.artifacts["ciess_c90_packed"]       # packed rows (models.compress.load_compressed)
    result.artifacts["ciess_c90"]              # the masked checkpoint (model_from_checkpoint)
    result.save("ciess-ml-1m")                 # results, plots and models in one folder

    # CIESS as its paper wrote it, or leanrec's variant without its validation screen
    search_embedding_sizes(EmbeddingSizeExperiment(dataset="ml-100k"), preset="paper")
    search_embedding_sizes(EmbeddingSizeExperiment(), preset="leanrec", without=("screen",))

A rerun with the same ``out_dir`` resumes: finished rows, the warm start, the search and the
retrainings are taken from the run directory.
"""

from __future__ import annotations

from leanrec.runner.rundir import Log
from leanrec.search.base import ExperimentResult
from leanrec.search.embedding_size.config import EmbeddingSizeExperiment, apply_preset
from leanrec.search.embedding_size.experiment import run_experiment


def search_embedding_sizes(
    experiment: EmbeddingSizeExperiment,
    log: Log = print,
    preset: str | None = None,
    without: tuple[str, ...] = (),
) -> ExperimentResult:
    """Run (or resume) ``experiment``: the warm start, CIESS's search and every baseline at
    every target sparsity, each model chosen on validation and tested once at the end.

    Args:
        preset: ``"paper"`` or ``"leanrec"``: set that preset's fields over ``experiment``
            first (:func:`~leanrec.search.embedding_size.config.apply_preset`); None: the
            experiment as given.
        without: with ``preset``, the additions of leanrec to turn off
            (:data:`~leanrec.search.embedding_size.config.LEANREC_ADDITIONS`).

    Returns:
        The rows (one per method and budget, plus the full-size references), the summary
        (``results.json``) and, as artefacts, the full-size models (``warm_start``,
        ``ordinary``) and for each budget ``c`` CIESS's model: ``ciess_c<c>`` (masked
        checkpoint), ``ciess_c<c>_packed`` (safetensors of the packed rows) and
        ``ciess_c<c>_sizes`` (``users``/``items`` sizes, npz).
    """
    if preset is not None:
        experiment = apply_preset(experiment, preset, without)
    elif without:
        raise ValueError("without turns additions of a preset off: give preset too")
    return run_experiment(experiment, log=log)


__all__ = ["search_embedding_sizes"]
