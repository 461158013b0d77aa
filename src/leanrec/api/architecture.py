"""Architecture search (AMEIR) from Python: one call runs a paper-style table.

Example::

    from leanrec.api.architecture import search_architecture
    from leanrec.search.architecture import ArchitectureExperiment, ArchitectureSearchConfig

    result = search_architecture(ArchitectureExperiment(
        dataset="ml-1m-ctr", out_dir="runs/architecture-ml-1m-ctr", baselines=("dnn",),
        methods=("ameir",), seeds=(0,), config=ArchitectureSearchConfig(supernet_epochs=0.5),
    ))
    print(result.table())                          # AUC, log loss, parameters per method
    result.artifacts["architecture_seed0"]         # leanrec train --architecture reads it
    result.artifacts["model_seed0"]                # the retrained model (load_ctr_model)

A :class:`~leanrec.search.architecture.RetrievalExperiment` (``dataset="beauty"``) runs the
next-item table instead (GRU4Rec and SASRec against AMEIR's Step 1).

Presets (:func:`~leanrec.search.architecture.config.apply_preset`): ``"paper"`` is AMEIR as its
paper wrote it (all three steps, no FM term, the ``[sum, last, attention]`` readout, 4 cycles
keeping 50, a cosine one-shot schedule, none of leanrec's additions); ``"leanrec"`` is leanrec's
variant, the defaults. A field given after the preset beats the preset's value::

    from leanrec.search.architecture.config import apply_preset

    paper = apply_preset(ArchitectureSearchConfig(supernet_epochs=6), "paper")
    no_fm = apply_preset(ArchitectureSearchConfig(), "leanrec", without=("fm_term",))
    result = search_architecture(ArchitectureExperiment(config=paper, seeds=(0,)))
    result.summary["preset"]                       # "paper": what the fields amount to
"""

from __future__ import annotations

from leanrec.runner.rundir import Log
from leanrec.search.architecture.config import ArchitectureExperiment, RetrievalExperiment
from leanrec.search.architecture.experiment import run_experiment
from leanrec.search.base import ExperimentResult


def search_architecture(
    experiment: ArchitectureExperiment | RetrievalExperiment, log: Log = print
) -> ExperimentResult:
    """Run (or resume) ``experiment``'s table: every hand-designed baseline and every search
    for every seed, each chosen on validation data and scored on test once at the end. On CTR
    the searches are capped at the best baseline's parameter count.

    Returns:
        The rows, the summary (``results.json``) and AMEIR's searched architectures and
        retrained models as artefacts (``architecture_seed<k>``, ``model_seed<k>``).
    """
    return run_experiment(experiment, log=log)


__all__ = ["search_architecture"]
