"""Does a larger batch change the `paper` preset's search signal? The 5-epoch fresh model.

A step of the `paper` preset trains one fixed fresh initialisation for 5 epochs under the
step's sizes and scores it on validation (Algorithm 1, line 10); that score, over the fully
trained ordinary model's, is the reward's quality. The paper fixes the 5 epochs, not the batch.
This probe trains the fresh model at several (batch, step size) settings, each at full width
and at uniform sizes, and prints its validation figures and seconds, so a setting that costs
less can be checked to give the same signal before a search uses it. Run from the repository
root (one setting per ``--setting BATCH:STEP``):

    python -m benchmarks.probes.ciess_fresh_batch --dataset ml-1m --model lightgcn \\
        --setting 2048:0.005 --setting 16384:0.02 --sizes 128 13 --threads 2
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from benchmarks.common import add_tag_argument, data_dir, machine, print_table, write_results
from leanrec.data.presets import prepare_split
from leanrec.models.compress import set_entity_sizes
from leanrec.search.embedding_size.config import EmbeddingSizeExperiment, apply_preset
from leanrec.search.embedding_size.environment import SizeSearchEnvironment
from leanrec.search.embedding_size.retrain import build_masked_model

SCRIPT = "ciess_fresh_batch"


def parse_setting(text: str) -> tuple[int, float]:
    """``"16384:0.02"`` -> ``(16384, 0.02)``: a batch size and an Adam step size."""
    batch, _, step = text.partition(":")
    if not batch.isdigit() or not step:
        raise argparse.ArgumentTypeError(f"a setting is BATCH:STEP (e.g. 16384:0.02), got {text!r}")
    return int(batch), float(step)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="ml-1m")
    parser.add_argument("--model", default="lightgcn")
    parser.add_argument("--setting", type=parse_setting, action="append", required=True)
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 13])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--seed", type=int, default=2024, help="split and initialisation (the presets' runs')"
    )
    add_tag_argument(parser, SCRIPT)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    experiment = apply_preset(EmbeddingSizeExperiment(dataset=args.dataset), "paper")
    cfg = experiment.search
    split, _ = prepare_split(args.dataset, experiment.protocol, str(data_dir()), args.seed)
    model = build_masked_model(split, args.model, None, cfg.max_dim, args.seed)
    start = {name: value.clone() for name, value in model.state_dict().items()}
    n_users, n_items = split.train.n_users, split.train.n_items
    rows = []
    for batch, step in args.setting:
        for size in args.sizes:  # each from the same shuffles and negatives
            environment = SizeSearchEnvironment(
                model, split, cfg.eval_ks, 0, batch, step, cfg.inner_negatives, cfg.pretrain.l2,
                start, args.seed, fresh_epochs=cfg.fresh_epochs,
            )  # fmt: skip
            began = time.perf_counter()
            model.load_state_dict(start)
            set_entity_sizes(model, np.full(n_users, size), np.full(n_items, size))
            loss = environment._train_inner()
            result = environment.measure_result()
            row = {
                "batch": batch,
                "step": step,
                "size": size,
                "epochs": cfg.fresh_epochs,
                "loss": round(loss, 4),
                **{m: round(float(result[m]), 4) for m in ("recall@20", "ndcg@20")},
                "seconds": round(time.perf_counter() - began, 1),
            }
            rows.append(row)
            print(row, flush=True)
    print_table(list(rows[0]), [list(r.values()) for r in rows])
    results: dict[str, object] = {"dataset": args.dataset, "model": args.model, **machine()}
    for row in rows:  # flat: batch<B>:step<S>:size<d>:<figure>
        name = f"batch{row['batch']}:step{row['step']}:size{row['size']}"
        results.update({f"{name}:{key}": row[key] for key in ("loss", "recall@20", "ndcg@20")})
        results[f"{name}:seconds"] = row["seconds"]
    results["epochs"] = rows[0]["epochs"]
    results["threads"] = args.threads
    print(f"written: {write_results(SCRIPT, results, args.tag)}")


if __name__ == "__main__":
    main()
