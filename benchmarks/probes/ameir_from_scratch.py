"""Which part of a searched AMEIR architecture costs accuracy: retrain it and variants from scratch.

Trains, on ML-1M CTR and in one run, the DNN baseline and the given searched architecture with
its parts changed one at a time: no interactions, no SE shortcut, and the MLP replaced by the
largest ReLU MLP of the width grid that keeps the model within ``--max-parameters``. Every model
starts from scratch (no one-shot weights) with the same trainer as the baselines of
``leanrec experiment architecture``; the epoch is chosen on validation AUC, and the test AUC
of that epoch is reported.

Writes ``results/ameir_from_scratch.json`` (``--tag T``: ``results/ameir_from_scratch--T.json``).
Run from the repository root:

    python -m benchmarks.probes.ameir_from_scratch \\
        runs/architecture-ml1m-ctr-noblocks/architecture_seed0.json \\
        --data-dir ../shared/data --max-parameters 166185

``--interactions user_id*item_id ...`` replaces the searched interactions by the given ones (for
the variants that keep interactions: the searched MLP and the widest ReLU MLP) to test one
interaction set without a search; ``--variants`` picks which models run (``deepfm`` is the
bar AMEIR has to clear). ``--tag user-item`` names such a run's results.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from collections.abc import Callable
from typing import Any

import torch

from benchmarks.common import add_tag_argument, print_table, write_results
from leanrec.data.behavior import FeatureMap
from leanrec.data.registry import load_behavior_dataset
from leanrec.models.ctr import CTRModel, build_ctr_model
from leanrec.models.ctr.ameir.architecture import Architecture
from leanrec.models.ctr.ameir.model import AMEIRConfig, AMEIRModel
from leanrec.search.architecture.model import MLPStepModel
from leanrec.train.pointwise import CTRTrainer, CTRTrainerConfig, evaluate_ctr


def widest_relu_mlp(
    feature_map: FeatureMap, arch: Architecture, max_parameters: int
) -> Architecture:
    """``arch`` with Step 3's largest ReLU MLP within ``max_parameters`` (the sandwich rule's
    "max" child, :meth:`MLPStepModel.largest_widths`)."""
    step3 = MLPStepModel(
        feature_map,
        AMEIRConfig(
            behavior_blocks=len(arch.blocks),
            mlp_layers=len(arch.mlp_widths),
            readout=arch.readout,
        ),
        blocks=arch.blocks,
        interactions=arch.interactions,
        se_shortcut=arch.se_shortcut,
    )
    step3.max_parameters = max_parameters
    try:
        widths = step3.largest_widths()
    except ValueError as error:
        raise SystemExit(str(error)) from None
    return dataclasses.replace(
        arch,
        mlp_widths=tuple(w / step3.input_dim for w in widths),
        mlp_activations=("relu",) * len(widths),
    )


def train_variant(
    label: str, make: Callable[[], CTRModel], split: Any, epochs: int, seed: int
) -> tuple[list[Any], dict[str, Any]]:
    """Build ``make()`` under ``seed``, train it from scratch (epoch chosen on validation AUC,
    patience 2) and test that epoch: a table row and the ``<label>_...`` result keys."""
    torch.manual_seed(seed)
    model = make()
    began = time.perf_counter()
    config = CTRTrainerConfig(max_epochs=epochs, patience=2, seed=seed, num_threads=1)
    fit = CTRTrainer(config).fit(model, split.train, split.valid)
    test = evaluate_ctr(model, split.test)  # the best-validation epoch's weights
    parameters = sum(p.numel() for p in model.parameters())
    row = [label, fit.best_valid["auc"], test["auc"], fit.best_epoch, parameters]
    return row, {
        f"{label}_valid_auc": float(fit.best_valid["auc"]),
        f"{label}_test_auc": float(test["auc"]),
        f"{label}_best_epoch": int(fit.best_epoch),
        f"{label}_parameters": int(parameters),
        f"{label}_valid_auc_by_epoch": ",".join(f"{h['valid_auc']:.4f}" for h in fit.history),
        f"{label}_seconds": time.perf_counter() - began,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("architecture", help="a searched architecture JSON")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-parameters", type=int, default=166185)
    parser.add_argument(
        "--interactions", nargs="*", default=None, help="replace the searched ones: a*b[*c]"
    )
    parser.add_argument(
        "--variants",
        nargs="*",
        default=["dnn", "searched", "no_interactions", "no_se", "widest_relu_mlp"],
        help="among dnn, deepfm, searched, no_interactions, no_se, widest_relu_mlp",
    )
    add_tag_argument(parser, "ameir_from_scratch")
    args = parser.parse_args()
    torch.set_num_threads(1)
    split = load_behavior_dataset("ml-1m-ctr", args.data_dir)
    searched = Architecture.load(args.architecture)
    if args.interactions is not None:
        fields = {f.name for f in split.feature_map.fields}
        interactions = tuple(tuple(sorted(text.split("*"))) for text in args.interactions)
        unknown = sorted({name for i in interactions for name in i} - fields)
        if unknown:
            raise SystemExit(f"unknown fields {unknown} in --interactions; known: {sorted(fields)}")
        searched = dataclasses.replace(searched, interactions=interactions)

    def build(arch: Architecture) -> CTRModel:
        return AMEIRModel.from_architecture(split.feature_map, arch)

    variants: dict[str, Callable[[], CTRModel]] = {
        "dnn": lambda: build_ctr_model("dnn", split.feature_map, seed=args.seed),
        "deepfm": lambda: build_ctr_model("deepfm", split.feature_map, seed=args.seed),
        "searched": lambda: build(searched),
        "no_interactions": lambda: build(dataclasses.replace(searched, interactions=())),
        "no_se": lambda: build(dataclasses.replace(searched, se_shortcut=False)),
    }
    wide = widest_relu_mlp(split.feature_map, searched, args.max_parameters)
    variants["widest_relu_mlp"] = lambda: build(wide)
    unknown_variants = sorted(set(args.variants) - set(variants))
    if unknown_variants:
        raise SystemExit(f"unknown variants {unknown_variants}; known: {sorted(variants)}")
    variants = {name: variants[name] for name in args.variants}
    results: dict[str, object] = {
        "architecture": args.architecture,
        "interactions": ",".join("*".join(i) for i in searched.interactions),
        "epochs": args.epochs,
        "seed": args.seed,
        "widest_relu_mlp_widths": ",".join(f"{w:.1f}" for w in wide.mlp_widths),
    }
    rows = []
    for label, make in variants.items():
        row, figures = train_variant(label, make, split, args.epochs, args.seed)
        rows.append(row)
        results.update(figures)
    print_table(["model", "valid AUC", "test AUC", "best epoch", "parameters"], rows)
    print(f"written: {write_results('ameir_from_scratch', results, args.tag)}")


if __name__ == "__main__":
    main()
