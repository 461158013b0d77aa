"""Which behaviour readout ``h^a`` to search with: the paper's or mean pooling, on ML-1M CTR.

Trains the same AMEIR network (no behaviour blocks, no interactions, no SE shortcut, MLP
widths 1.0 / 0.5 of its input) from scratch with each readout, next to the DNN baseline (mean
pooled history) in the same run, and prints the validation AUC after every epoch. Model
selection only: test samples are never read.

Writes ``results/ameir_readout.json`` (``--tag T``: ``results/ameir_readout--T.json``). Run from the
repository root:

    python -m benchmarks.probes.ameir_readout --data-dir ../shared/data --epochs 3
"""

from __future__ import annotations

import argparse
import functools

import torch

from benchmarks.common import add_tag_argument, print_table, write_results
from leanrec.data.registry import load_behavior_dataset
from leanrec.models.ctr import build_ctr_model
from leanrec.models.ctr.ameir.architecture import PAPER_READOUT, Architecture
from leanrec.models.ctr.ameir.model import AMEIRModel
from leanrec.train.pointwise import CTRTrainer, CTRTrainerConfig

READOUTS: dict[str, tuple[str, ...]] = {
    "paper (sum, last, attention)": PAPER_READOUT,
    "mean, last, attention": ("mean", "last", "attention"),
    "mean": ("mean",),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    add_tag_argument(parser, "ameir_readout")
    args = parser.parse_args()
    torch.set_num_threads(1)
    split = load_behavior_dataset("ml-1m-ctr", args.data_dir)
    models = {"dnn (baseline)": lambda: build_ctr_model("dnn", split.feature_map, seed=args.seed)}
    for label, parts in READOUTS.items():
        arch = Architecture(
            mlp_widths=(1.0, 0.5),
            mlp_activations=("relu", "relu"),
            se_shortcut=False,
            readout=parts,
        )
        models[label] = functools.partial(AMEIRModel.from_architecture, split.feature_map, arch)
    rows, results = [], {"epochs": args.epochs, "seed": args.seed}
    for label, build in models.items():
        torch.manual_seed(args.seed)
        model = build()
        trainer = CTRTrainer(
            CTRTrainerConfig(max_epochs=args.epochs, patience=args.epochs, seed=args.seed)
        )
        fit = trainer.fit(model, split.train, split.valid)
        aucs = [h["valid_auc"] for h in fit.history]
        rows.append([label, *aucs, sum(p.numel() for p in model.parameters())])
        key = label.split(" (")[0].replace(", ", "_").replace(" ", "_")
        for epoch, value in enumerate(aucs, start=1):
            results[f"{key}_valid_auc_epoch{epoch}"] = value
        results[f"{key}_train_loss_last"] = fit.history[-1]["loss"]
    print_table(
        ["readout", *(f"valid AUC ep {e}" for e in range(1, args.epochs + 1)), "parameters"],
        rows,
    )
    print(f"written: {write_results('ameir_readout', results, args.tag)}")


if __name__ == "__main__":
    main()
