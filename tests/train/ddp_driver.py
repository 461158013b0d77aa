"""Trainings that ``tests/train/test_distributed.py`` runs twice: in the test's own process
(one process) and under ``torchrun --nproc_per_node 2`` (``python -m tests.train.ddp_driver
OUT``), where every rank writes what it ended with to ``OUT/rank<r>.pt``.

* ``mf``: MF on the synthetic set, ``sparse_adam`` (the BPR default: sparse row gradients
  averaged by hand), float32 — the validation metrics and the loss per epoch;
* ``neumf64``: NeuMF in float64, ``sparse_adam`` (its MLP through DDP, its tables by hand),
  so that the data-parallel run equals the one-process run up to float64 rounding;
* ``deepfm``: DeepFM on synthetic click samples with ``sparse_adam`` on its tables (CTR
  trainer, dense layers through DDP).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import torch

from leanrec.api import TrainConfig, train
from leanrec.data.presets import prepare_split
from leanrec.models.ctr import build_ctr_model
from leanrec.models.registry import build_model
from leanrec.train.bpr import BPRTrainer, TrainerConfig
from leanrec.train.distributed import data_parallel, finish
from leanrec.train.pointwise import CTRTrainer, CTRTrainerConfig
from tests.models.ctr.synthetic import make_samples


def run_mf() -> dict[str, Any]:
    trainer = TrainerConfig(max_epochs=3, num_threads=1, embedding_optimizer="sparse_adam")
    run = train(TrainConfig(dataset="synthetic", model="mf", trainer=trainer))
    return {
        "valid": run.valid_metrics,
        "losses": [record["loss"] for record in run.train_result.history],
        "state": run.model.state_dict(),
    }


def run_neumf64() -> dict[str, Any]:
    split, _ = prepare_split("synthetic", None, None, 2024)
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        model = build_model("neumf", split.train, seed=2024)
        trainer = TrainerConfig(max_epochs=2, batch_size=8192, num_threads=1)
        BPRTrainer(model, split.train, None, trainer).fit()  # no validation: only weights
    finally:
        torch.set_default_dtype(before)
    return {"state": model.state_dict()}


def run_deepfm() -> dict[str, Any]:
    train_samples, _ = make_samples(3000, seed=1)
    valid, _ = make_samples(1000, seed=2)
    model = build_ctr_model(
        "deepfm", train_samples.feature_map, seed=0, embedding_dim=8, mlp_dims=(32, 16)
    )
    config = CTRTrainerConfig(
        batch_size=256, max_epochs=2, num_threads=1, embedding_optimizer="sparse_adam"
    )
    result = CTRTrainer(config).fit(model, train_samples, valid)
    return {
        "valid": result.best_valid,
        "losses": [record["loss"] for record in result.history],
        "state": model.state_dict(),
    }


RUNS = {"mf": run_mf, "neumf64": run_neumf64, "deepfm": run_deepfm}


def main(out: Path) -> None:
    parallel = data_parallel()
    rank = 0 if parallel is None else parallel.rank
    results = {name: run() for name, run in RUNS.items()}
    torch.save(results, out / f"rank{rank}.pt")
    finish()


if __name__ == "__main__":
    main(Path(sys.argv[1]))
