"""Does the pooled history as one more interaction field close AMEIR's gap to DeepFM?

DeepFM's FM term pairs every field with the mean-pooled history; AMEIR's Stage 2 interacts only
non-sequential fields. This probe trains from scratch, on ML-1M CTR and in one run:

- ``deepfm_nohistfm``: DeepFM whose FM term leaves the history out (the DNN still reads it);
- ``hist_item``, ``hist_item_user_item``: an AMEIR-shaped model whose fields include the pooled
  history, with the Hadamard interactions ``history x item`` (and ``user x item``), the SE
  shortcut, and the widest ReLU MLP of the width grid within DeepFM's parameter count;
- ``deepfm`` (the bar).

The epoch is chosen on validation AUC (up to 10, patience 2); the test AUC is that epoch's.

Writes ``results/ameir_history_probe.json`` (``--tag T``: ``results/ameir_history_probe--T.json``).
Run from the repository root:

    python -m benchmarks.probes.ameir_history_probe --data-dir ../shared/data \\
        --variants hist_item_user_item deepfm_nohistfm hist_item
"""

from __future__ import annotations

import argparse
import functools
import itertools
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from benchmarks.common import add_tag_argument, print_table, write_results
from benchmarks.probes.ameir_from_scratch import train_variant
from leanrec.data.behavior import FeatureMap
from leanrec.data.registry import load_behavior_dataset
from leanrec.models.ctr import build_ctr_model
from leanrec.models.ctr.ameir.architecture import WIDTH_RATIOS
from leanrec.models.ctr.ameir.interactions import SEShortcut, hadamard_interactions
from leanrec.models.ctr.ameir.mlp import MLP as SEARCHED_MLP
from leanrec.models.ctr.ameir.model import field_indices
from leanrec.models.ctr.base import CTRConfig, CTRModel
from leanrec.models.ctr.deepfm import DeepFM
from leanrec.models.ctr.inputs import EmbeddedBatch
from leanrec.models.ctr.layers import fm_second_order

INTERACTION_SETS = {
    "hist_item": [("history", "item_id")],
    "hist_item_user_item": [("history", "item_id"), ("item_id", "user_id")],
}


class DeepFMWithoutHistoryFM(DeepFM):
    """DeepFM whose FM term pairs the non-sequential fields only."""

    name = "deepfm_nohistfm"

    def logits(self, inputs: EmbeddedBatch) -> torch.Tensor:
        stacked = inputs.fields_with_history(self.config.history_pooling)
        return (
            self.bias
            + self.linear_logit(inputs)
            + fm_second_order(inputs.fields)
            + self.deep(stacked.flatten(1))
        )


class HistoryFieldModel(CTRModel):
    """``[e^b, history, p^b]`` into a ReLU MLP and the SE shortcut; output
    ``w^T [h_MLP, h_se]`` (AMEIR's Stage 3 with the pooled history as a field)."""

    name = "history_field_probe"
    config_class = CTRConfig
    index: torch.Tensor

    def __init__(
        self, feature_map: FeatureMap, interactions: Sequence[tuple[str, ...]], ratios: tuple
    ) -> None:
        super().__init__(feature_map, None)
        d = self.config.embedding_dim
        names = [*self.embedder.field_names, "history"]
        index = field_indices(names, tuple(interactions))
        self.register_buffer("index", index, persistent=False)
        n_se = len(names) + len(interactions)
        self.widths = tuple(max(1, round(r * n_se * d)) for r in ratios)
        self.mlp = SEARCHED_MLP(n_se * d, self.widths, ("relu",) * len(self.widths))
        self.se = SEShortcut(n_se, d)
        self.output = nn.Linear(self.widths[-1] + d, 1)

    def logits(self, inputs: EmbeddedBatch) -> torch.Tensor:
        fields = inputs.fields_with_history("mean")
        q = torch.cat([fields, hadamard_interactions(fields, self.index)], 1)
        return self.output(torch.cat([self.mlp(q.flatten(1)), self.se(q)], 1)).squeeze(-1)


def widest(feature_map: FeatureMap, interactions: list, budget: int) -> tuple:
    best: tuple[int, tuple] | None = None
    for ratios in itertools.combinations_with_replacement(WIDTH_RATIOS[::-1], 2):
        model = HistoryFieldModel(feature_map, interactions, ratios)
        size = sum(p.numel() for p in model.parameters())
        if size <= budget and (best is None or size > best[0]):
            best = (size, ratios)
    if best is None:
        raise SystemExit(f"no MLP fits {budget} parameters")
    return best[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-parameters", type=int, default=166185)
    parser.add_argument(
        "--variants", nargs="*", default=["deepfm", "deepfm_nohistfm", *INTERACTION_SETS]
    )
    add_tag_argument(parser, "ameir_history_probe")
    args = parser.parse_args()
    torch.set_num_threads(1)
    split = load_behavior_dataset("ml-1m-ctr", args.data_dir)
    feature_map = split.feature_map
    results: dict[str, Any] = {"seed": args.seed}
    rows = []
    makers: dict[str, Callable[[], CTRModel]] = {
        "deepfm": lambda: build_ctr_model("deepfm", feature_map, seed=args.seed),
        "deepfm_nohistfm": lambda: DeepFMWithoutHistoryFM(feature_map),
    }
    for name, interactions in INTERACTION_SETS.items():
        ratios = widest(feature_map, interactions, args.max_parameters)
        makers[name] = functools.partial(HistoryFieldModel, feature_map, interactions, ratios)
    unknown = sorted(set(args.variants) - set(makers))
    if unknown:
        raise SystemExit(f"unknown variants {unknown}; known: {sorted(makers)}")
    for variant in args.variants:
        row, figures = train_variant(variant, makers[variant], split, 10, args.seed)
        rows.append(row)
        results.update(figures)
    print_table(["model", "valid AUC", "test AUC", "best epoch", "parameters"], rows)
    print(f"written: {write_results('ameir_history_probe', results, args.tag)}")


if __name__ == "__main__":
    main()
