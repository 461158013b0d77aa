"""The DeepCTR-Torch side of ``benchmarks.peers.vs_deepctr``; runs in DeepCTR-Torch's own venv
(see ``deepctr_env.py``), by its path, and never imports leanrec or ``benchmarks``.

Reads the arrays leanrec exported (``--data``, an ``.npz`` with ``{part}/{column}`` arrays for
part in train / valid / test, and ``--meta``, a JSON with the vocabulary sizes), builds
DeepCTR-Torch's ``DeepFM`` on the same fields, trains it with ``model.fit`` for ``--epochs``
epochs and writes a flat JSON result (``--out``) plus the valid / test click probabilities
(``--predictions``, ``.npz``) so that the caller scores both libraries with one metric code.

Feature columns (``d = --dim``; every ID is in ``[1, vocab)``, 0 = padding):

* one ``SparseFeat`` per categorical column (user_id, gender, age, occupation, zip, item_id,
  year);
* ``genres``: ``VarLenSparseFeat`` of the target item's ``G`` genre IDs, mean-pooled;
* ``hist_item_id``: ``VarLenSparseFeat`` of the ``N`` previous items, mean-pooled, sharing the
  ``item_id`` table (``embedding_name="item_id"``);
* ``hist_genres`` (unless ``--no-hist-genres``): ``VarLenSparseFeat`` of the ``N * G`` genre IDs
  of the history items, mean-pooled, sharing the ``genres`` table.

Timing: a callback reads the wall and process-CPU clocks at the begin and end of every epoch of
``fit`` (the batches only: ``fit`` concatenates the inputs before the first epoch, and
validation runs in the callback after the epoch's clock stopped). The weights of the epoch with
the best validation AUC are restored at the end, as leanrec's ``CTRTrainer`` does.

    benchmarks/.venv-deepctr/bin/python benchmarks/peers/deepctr_runner.py --data arrays.npz \\
        --meta meta.json --out r.json --predictions p.npz --epochs 2 --threads 1
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
import types
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from torch import nn


def _import_deepctr() -> types.ModuleType:
    """Import deepctr_torch without its import-time PyPI version check.

    ``deepctr_torch/__init__.py`` starts a thread that queries PyPI (``utils.check_version``);
    a stub ``deepctr_torch.utils`` keeps the benchmark offline and its output clean.
    """
    stub = types.ModuleType("deepctr_torch.utils")
    stub.check_version = lambda version: None  # type: ignore[attr-defined]
    sys.modules["deepctr_torch.utils"] = stub
    import deepctr_torch

    return deepctr_torch


def feature_columns(meta: dict, dim: int, hist_genres: bool) -> list:
    from deepctr_torch.inputs import SparseFeat, VarLenSparseFeat

    vocab = meta["vocab_sizes"]
    tag, item = meta["tag_field"], meta["target_field"]
    n, g = meta["max_history"], meta["max_tags"]
    columns: list = [
        SparseFeat(name, vocab[name], embedding_dim=dim) for name in meta["categorical"]
    ]
    columns.append(VarLenSparseFeat(SparseFeat(tag, vocab[tag], embedding_dim=dim), g, "mean"))
    columns.append(
        VarLenSparseFeat(
            SparseFeat(f"hist_{item}", vocab[item], embedding_dim=dim, embedding_name=item),
            n,
            "mean",
        )
    )
    if hist_genres:
        columns.append(
            VarLenSparseFeat(
                SparseFeat(f"hist_{tag}", vocab[tag], embedding_dim=dim, embedding_name=tag),
                n * g,
                "mean",
            )
        )
    return columns


def match_leanrec_init(model: nn.Module) -> None:
    """Xavier-uniform weights and zero biases in the deep tower, like leanrec's MLP.

    DeepCTR draws the tower's weights from N(0, init_std = 1e-4) and keeps torch's default
    uniform biases; embedding tables (N(0, 1e-4)) are the same on both sides either way.
    """
    deepfm = cast(Any, model)  # DeepCTR's DeepFM: its submodules are attributes mypy cannot see
    layers: list[nn.Linear] = [*deepfm.dnn.linears, deepfm.dnn_linear]
    for layer in layers:
        nn.init.xavier_uniform_(layer.weight)
        if layer.bias is not None:
            nn.init.zeros_(layer.bias)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--meta", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--predictions", type=Path, required=True)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--eval-batch", type=int, default=8192)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--dim", type=int, default=16)
    parser.add_argument("--mlp", default="200,80")
    parser.add_argument("--init-std", type=float, default=1e-4)
    parser.add_argument("--init", choices=["leanrec", "deepctr"], default="leanrec")
    parser.add_argument("--no-hist-genres", action="store_true")
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    deepctr_torch = _import_deepctr()
    from deepctr_torch.callbacks import Callback
    from deepctr_torch.models import DeepFM
    from sklearn.metrics import log_loss, roc_auc_score

    meta = json.loads(args.meta.read_text())
    columns = feature_columns(meta, args.dim, not args.no_hist_genres)
    names = [c.name for c in columns]
    with np.load(args.data) as stored:
        parts = {
            part: ({name: stored[f"{part}/{name}"] for name in names}, stored[f"{part}/label"])
            for part in ("train", "valid", "test")
        }

    model = DeepFM(
        columns,
        columns,
        dnn_hidden_units=tuple(int(w) for w in args.mlp.split(",")),
        # leanrec's CTRTrainer has no penalty by default (l2 = 0); DeepCTR's 1e-5 defaults
        # would also add a full-table sum of squares to every step
        l2_reg_linear=0.0,
        l2_reg_embedding=0.0,
        l2_reg_dnn=0.0,
        init_std=args.init_std,
        seed=args.seed,
        task="binary",
        device="cpu",
    )
    if args.init == "leanrec":
        match_leanrec_init(model)
    model.compile(
        torch.optim.Adam(model.parameters(), lr=args.lr),
        "binary_crossentropy",
        metrics=["binary_crossentropy", "auc"],
    )

    valid_x, valid_y = parts["valid"]

    class EpochClock(Callback):
        """Per-epoch training clocks, validation after the clock stops, best weights kept."""

        def __init__(self) -> None:
            super().__init__()
            self.wall: list[float] = []
            self.cpu: list[float] = []
            self.valid_auc: list[float] = []
            self.eval_wall: list[float] = []
            self.best_state: dict | None = None
            self.best_auc = -np.inf
            self.best_epoch = 0

        def on_epoch_begin(self, epoch, logs=None):
            self.t_wall, self.t_cpu = time.perf_counter(), time.process_time()

        def on_epoch_end(self, epoch, logs=None):
            self.wall.append(time.perf_counter() - self.t_wall)
            self.cpu.append(time.process_time() - self.t_cpu)
            t0 = time.perf_counter()
            auc = float(roc_auc_score(valid_y, model.predict(valid_x, args.eval_batch)))
            self.eval_wall.append(time.perf_counter() - t0)
            self.valid_auc.append(auc)
            if auc > self.best_auc:
                self.best_auc, self.best_epoch = auc, epoch + 1
                self.best_state = copy.deepcopy(model.state_dict())
            model.train()  # fit switches to train mode once, before the first epoch
            print(
                f"epoch {epoch + 1}: {self.wall[-1]:.1f} s wall, {self.cpu[-1]:.1f} s cpu, "
                f"valid auc {auc:.4f}",
                flush=True,
            )

    clock = EpochClock()
    train_x, train_y = parts["train"]
    started = time.perf_counter()
    model.fit(
        train_x, train_y, batch_size=args.batch, epochs=args.epochs, verbose=0, shuffle=True,
        callbacks=[clock],
    )  # fmt: skip
    fit_wall = time.perf_counter() - started
    if clock.best_state is not None:
        model.load_state_dict(clock.best_state)

    result: dict[str, object] = {
        "deepctr_version": deepctr_torch.__version__,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "init": args.init,
        "hist_genres": not args.no_hist_genres,
        "n_fields": len(columns),
        "n_train": len(train_y),
        "epochs": args.epochs,
        "best_epoch": clock.best_epoch,
        "train_wall_s": sum(clock.wall),
        "train_cpu_s": sum(clock.cpu),
        "samples_per_s": len(train_y) * args.epochs / sum(clock.wall),
        "samples_per_cpu_s": len(train_y) * args.epochs / sum(clock.cpu),
        "fit_wall_s": fit_wall,
        "valid_eval_wall_s": sum(clock.eval_wall),
        "parameters": sum(p.numel() for p in model.parameters()),
    }
    predictions = {}
    for part in ("valid", "test"):
        x, y = parts[part]
        probs = model.predict(x, args.eval_batch).reshape(-1)
        predictions[part] = probs
        result[f"{part}_auc_sklearn"] = float(roc_auc_score(y, probs))
        result[f"{part}_logloss_sklearn"] = float(log_loss(y, np.clip(probs, 1e-7, 1 - 1e-7)))
    np.savez(args.predictions, **predictions)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
