"""Cost of the CIESS search on ML-1M with LightGCN.

Two parts, printed as one table:

1. Per-iteration cost, measured in this run on the same sizes:
   - leanrec's step: warm start, ``inner_batches`` large BPR batches, validation, TD3 updates;
   - the paper's step (peer): a freshly initialised recommender trained 5 epochs at batch 2048
     (CIESS Sec. 2.3, Algorithm 1 line 7-10), then validation.
   Both report validation Recall@20 under the same masks, so the speed-up is shown not to cost
   the quality signal.
2. The whole search as run by ``leanrec experiment embedding-size`` (its ``timings.json``):
   wall time of all episodes, time per iteration, and selective retraining for every budget.

Writes ``results/ciess_search_cost.json`` (``--tag T``: ``results/ciess_search_cost--T.json``).
Run from the repository root:

    python -m benchmarks.perf.ciess_search_cost --run runs/es-ml1m-lightgcn
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.common import add_tag_argument, data_dir, print_table, write_results
from leanrec.data.presets import prepare_split
from leanrec.models.compress import set_entity_sizes
from leanrec.models.registry import model_from_checkpoint
from leanrec.search.embedding_size import CIESSConfig, SizeSearchEnvironment
from leanrec.search.embedding_size.policy import (
    CIESSPolicy,
    SizeTransitions,
    make_states,
    normalized_popularity,
)
from leanrec.search.embedding_size.retrain import build_masked_model
from leanrec.train.bpr import BPRTrainer, TrainerConfig
from leanrec.train.checkpoint import load_checkpoint


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", default="runs/es-ml1m-lightgcn")
    parser.add_argument(
        "--inner-batches", type=int, default=None, help="default: the run's own (config.json)"
    )
    parser.add_argument("--paper-epochs", type=int, default=5)
    parser.add_argument("--paper-batch", type=int, default=2048)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    add_tag_argument(parser, "ciess_search_cost")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    run = Path(args.run)
    run_config = run / "config.json"
    if args.inner_batches is None:
        stored = json.loads(run_config.read_text()) if run_config.exists() else {}
        args.inner_batches = stored.get("search", {}).get("inner_batches", 8)
    config = CIESSConfig(inner_batches=args.inner_batches)
    split, _ = prepare_split("ml-1m", "ciess", data_dir(), config.seed)
    warm = model_from_checkpoint(load_checkpoint(run / "warm_start.pt"))
    warm_state = {k: v.clone() for k, v in warm.state_dict().items()}
    env = SizeSearchEnvironment(
        warm,
        split,
        config.eval_ks,
        config.inner_batches,
        config.inner_batch_size,
        config.inner_learning_rate,
        config.inner_negatives,
        config.pretrain.l2,
        warm_state,
        config.seed,
    )
    env.set_reference()
    rng = np.random.default_rng(0)
    policy = CIESSPolicy(config)
    pops = {
        "user": normalized_popularity(split.train.user_popularity()),
        "item": normalized_popularity(split.train.item_popularity()),
    }
    states = {
        role: make_states(p, np.full(len(p), 128), np.ones(len(p)), 128) for role, p in pops.items()
    }
    ours, our_recall = [], []
    for _ in range(args.repeats):
        began = time.perf_counter()
        sizes = {role: policy.choose(role, states[role], rng) for role in states}
        outcome = env.step(sizes["user"], sizes["item"])
        for role, q in (("user", outcome["q_users"]), ("item", outcome["q_items"])):
            reward = q - config.reward_lambda * (sizes[role] / 128) ** 2
            nxt = make_states(pops[role], sizes[role], q, 128)
            policy.remember(role, SizeTransitions(states[role], sizes[role], reward, nxt, False))
        policy.learn(rng)
        ours.append(time.perf_counter() - began)
        our_recall.append(float(env.measure_result().mean["recall@20"]))

    # the paper's step under the last sizes: fresh model, 5 epochs at batch 2048
    fresh = build_masked_model(split, "lightgcn", {}, 128, seed=1)
    set_entity_sizes(fresh, sizes["user"], sizes["item"])
    trainer = TrainerConfig(
        max_epochs=args.paper_epochs,
        batch_size=args.paper_batch,
        learning_rate=0.001,
        eval_every=args.paper_epochs,
        patience=100,
        valid_metric="recall@20",
        ks=[20],
        progress=False,
    )
    began = time.perf_counter()
    result = BPRTrainer(fresh, split.train, split.valid, trainer).fit()
    paper_seconds = time.perf_counter() - began
    paper_recall = float(result.best_valid["recall@20"])

    timings_path = run / "timings.json"
    timings = json.loads(timings_path.read_text()) if timings_path.exists() else {}
    retrain = sum(v for k, v in timings.items() if k.startswith("ciess_retrain_"))
    search = timings.get("search_seconds", float("nan"))
    ours_median = float(np.median(ours))
    rows = [
        ["leanrec step (warm start)", ours_median, float(np.mean(our_recall))],
        ["paper step (fresh, 5 epochs)", paper_seconds, paper_recall],
    ]
    print_table(["per-iteration", "seconds", "valid recall@20"], rows)
    print(f"speed-up per iteration: {paper_seconds / ours_median:.1f}x")
    total = search + retrain
    print(
        f"whole search ({timings.get('search_iterations', '?')} iterations): "
        f"{search / 3600:.2f} h, {timings.get('seconds_per_iteration', float('nan')):.1f} s per "
        f"iteration; selective retraining {retrain / 3600:.2f} h; total {total / 3600:.2f} h "
        f"(goal <= 2 h); pretraining the warm start "
        f"{timings.get('pretrain_seconds', 0) / 3600:.2f} h"
    )
    write_results(
        "ciess_search_cost",
        {
            "run": str(run),
            "inner_batches": args.inner_batches,
            "our_step_seconds": ours_median,
            "our_step_valid_recall@20": float(np.mean(our_recall)),
            "paper_step_seconds": paper_seconds,
            "paper_step_valid_recall@20": paper_recall,
            "speedup_per_iteration": paper_seconds / ours_median,
            "search_seconds": search,
            "search_iterations": timings.get("search_iterations", 0),
            "search_seconds_per_iteration": timings.get("seconds_per_iteration", float("nan")),
            "retrain_seconds": retrain,
            "search_plus_retrain_hours": total / 3600,
            "pretrain_hours": timings.get("pretrain_seconds", 0.0) / 3600,
            "goal_hours": 2.0,
            "goal_met": total / 3600 <= 2.0,
        },
        args.tag,
    )


if __name__ == "__main__":
    main()
