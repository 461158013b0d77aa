"""Cost of the CIESS search on ML-1M with LightGCN, and where a search step's time goes.

Two measurements, each optional:

1. ``--paper-steps N`` (default 2): N iterations of the ``paper`` preset's search as
   ``leanrec experiment embedding-size --preset paper`` runs them (:class:`CIESSSearch` over a
   :class:`SizeSearchEnvironment` with ``fresh_epochs = 5`` at batch 2,048, Algorithm 1 line
   7-10), timed by part: the actors, exploration and critics choosing the sizes; the masks
   (the fixed fresh initialisation loaded, the sizes set); the model's training, split into
   the sparse propagation products (3 forward and 3 backward per batch), the Adam steps,
   negative sampling and the rest (masked lookups, dot products, L2, autograd); the quality
   (one full-ranking validation pass and Eq. 7-9); the TD3 updates; the checkpoint. The
   checkpoint of a finished 30 x 10 search holds full replay buffers, so its save is also
   timed at that size. Eq. 7's reference here is the fresh initialisation itself (the run
   uses an ordinary trained model; the cost is the same).
2. ``--run DIR`` with a ``warm_start.pt``: leanrec's warm-start step beside it, and the whole
   search of that run as its ``timings.json`` recorded it.

Writes ``results/ciess_search_cost.json`` (``--tag T``: ``results/ciess_search_cost--T.json``).
Run from the repository root (one thread, as the experiments run):

    python -m benchmarks.perf.ciess_search_cost --paper-steps 2 --tag paper-step
    python -m benchmarks.perf.ciess_search_cost --run runs/es-ml1m-lightgcn --paper-steps 0
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.common import add_tag_argument, data_dir, print_table, write_results
from leanrec.data.interactions import Split
from leanrec.data.presets import prepare_split
from leanrec.models import graph as graph_module
from leanrec.models.registry import model_from_checkpoint
from leanrec.rl.replay import ReplayBuffer
from leanrec.search.embedding_size import CIESSConfig, CIESSSearch, SizeSearchEnvironment
from leanrec.search.embedding_size import environment as environment_module
from leanrec.search.embedding_size import policy as policy_module
from leanrec.search.embedding_size.config import EmbeddingSizeExperiment, apply_preset
from leanrec.search.embedding_size.policy import (
    CIESSPolicy,
    SizeTransitions,
    make_states,
    normalized_popularity,
)
from leanrec.search.embedding_size.retrain import build_masked_model
from leanrec.train import sampling as sampling_module
from leanrec.train.checkpoint import load_checkpoint, save_atomic

PARTS = (
    "choose sizes (actors, noise, random walk, critics)",
    "masks (fresh initialisation loaded, sizes set)",
    "training: sparse propagation products",
    "training: Adam steps",
    "training: negative sampling",
    "training: the rest (lookups, masks, dots, L2, autograd)",
    "quality (validation ranking, Eq. 7-9)",
    "TD3 updates",
    "checkpoint (this step's state)",
)


class Timers:
    """Seconds per part, filled by wrapped callables. Parts inside the model's training
    (``within_training``) count only while the training runs: the validation ranking
    propagates too, and the TD3 updates take Adam steps of their own."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.training = False

    def wrap(
        self, part: str, function: Callable[..., Any], within_training: bool = False
    ) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            if within_training and not self.training:
                return function(*args, **kwargs)
            began = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.seconds[part] += time.perf_counter() - began

        return timed

    def wrap_training(self, function: Callable[..., Any]) -> Callable[..., Any]:
        timed = self.wrap("training", function)

        def training(*args: Any, **kwargs: Any) -> Any:
            self.training = True
            try:
                return timed(*args, **kwargs)
            finally:
                self.training = False

        return training


def paper_config() -> CIESSConfig:
    """The search fields of ``--preset paper`` (the rest at their defaults)."""
    return apply_preset(EmbeddingSizeExperiment(), "paper").search


def time_paper_steps(split: Split, steps: int) -> dict[str, Any]:
    """``steps`` iterations of the paper preset's search, timed by part (see the module)."""
    cfg = dataclasses.replace(paper_config(), episodes=1, iterations=steps, progress=False)
    model = build_masked_model(split, "lightgcn", {}, cfg.max_dim, cfg.seed)
    start = {k: v.clone() for k, v in model.state_dict().items()}
    env = SizeSearchEnvironment(
        model, split, cfg.eval_ks, cfg.inner_batches, cfg.fresh_batch_size,
        cfg.inner_learning_rate, cfg.inner_negatives, cfg.pretrain.l2, start, cfg.seed,
        item_quality=cfg.item_quality, reference_state=start, fresh_epochs=cfg.fresh_epochs,
    )  # fmt: skip
    env.set_reference()
    timers = Timers()
    patches = [
        (environment_module, "set_entity_sizes", PARTS[1], False),
        (graph_module, "_cpu_matmul", PARTS[2], True),
        (torch.optim.Adam, "step", PARTS[3], True),
        (sampling_module.NegativeSampler, "sample", PARTS[4], True),
        (policy_module, "save_atomic", PARTS[8], False),
    ]
    originals = [(owner, name, getattr(owner, name)) for owner, name, _, _ in patches]
    for owner, name, part, within in patches:
        setattr(owner, name, timers.wrap(part, getattr(owner, name), within))
    with tempfile.TemporaryDirectory() as tmp:
        search = CIESSSearch(
            env,
            split.train.user_popularity(),
            split.train.item_popularity(),
            cfg,
            checkpoint_path=Path(tmp) / "search_state.pt",
        )
        policy = search.policy
        policy.choose = timers.wrap(PARTS[0], policy.choose)  # type: ignore[method-assign]
        policy.learn = timers.wrap(PARTS[7], policy.learn)  # type: ignore[method-assign]
        env.measure = timers.wrap(PARTS[6], env.measure)  # type: ignore[method-assign]
        env._train_inner = timers.wrap_training(env._train_inner)  # type: ignore[method-assign]
        model.load_state_dict = timers.wrap(PARTS[1], model.load_state_dict)  # type: ignore[method-assign]
        search._state = timers.wrap(PARTS[8], search._state)  # type: ignore[method-assign]
        try:
            began = time.perf_counter()
            result = search.run()
            total = time.perf_counter() - began
        finally:
            for owner, name, original in originals:
                setattr(owner, name, original)
        seconds = dict(timers.seconds)  # before the full-size save below builds a state
        full_save = time_full_checkpoint(search, cfg, split, Path(tmp))
    training = seconds.pop("training")
    seconds[PARTS[5]] = training - sum(seconds.get(p, 0.0) for p in PARTS[2:5])
    per_step = {part: seconds.get(part, 0.0) / steps for part in PARTS}
    per_step["other (bookkeeping)"] = total / steps - sum(per_step.values())
    return {
        "steps": steps,
        "step_seconds": total / steps,
        "training_seconds": training / steps,
        "parts": per_step,
        "full_checkpoint_seconds": full_save["seconds"],
        "full_checkpoint_bytes": full_save["bytes"],
        "last_sparsity": float(result.history[-1]["sparsity"]),
    }


def time_full_checkpoint(
    search: CIESSSearch, cfg: CIESSConfig, split: Split, directory: Path
) -> dict[str, float]:
    """Save the search state once with the replay buffers and candidates a finished paper
    search (``M x T`` iterations) holds, and time it."""
    iterations = CIESSConfig().episodes * CIESSConfig().iterations
    policy = search.policy
    assert isinstance(policy, CIESSPolicy)
    for role, n in (("user", split.train.n_users), ("item", split.train.n_items)):
        buffer: ReplayBuffer = policy.buffers[role]
        buffer.size = min(cfg.replay_capacity, iterations * n)
    candidate = search.candidates[-1]
    search.candidates = [candidate] * iterations
    path = directory / "full_state.pt"
    began = time.perf_counter()
    save_atomic(search._state(), path)
    return {"seconds": time.perf_counter() - began, "bytes": float(os.path.getsize(path))}


def time_warm_start_steps(run: Path, split: Split, repeats: int) -> dict[str, float]:
    """leanrec's step (warm start, ``inner_batches`` large batches) on ``run``'s warm start."""
    run_config = run / "config.json"
    stored = json.loads(run_config.read_text()) if run_config.exists() else {}
    config = CIESSConfig(inner_batches=stored.get("search", {}).get("inner_batches", 8))
    warm = model_from_checkpoint(load_checkpoint(run / "warm_start.pt"))
    warm_state = {k: v.clone() for k, v in warm.state_dict().items()}
    env = SizeSearchEnvironment(
        warm, split, config.eval_ks, config.inner_batches, config.inner_batch_size,
        config.inner_learning_rate, config.inner_negatives, config.pretrain.l2, warm_state,
        config.seed,
    )  # fmt: skip
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
    ours, recall = [], []
    for _ in range(repeats):
        began = time.perf_counter()
        sizes = {role: policy.choose(role, states[role], rng) for role in states}
        outcome = env.step(sizes["user"], sizes["item"])
        for role, q in (("user", outcome["q_users"]), ("item", outcome["q_items"])):
            reward = q - config.reward_lambda * (sizes[role] / 128) ** 2
            nxt = make_states(pops[role], sizes[role], q, 128)
            policy.remember(role, SizeTransitions(states[role], sizes[role], reward, nxt, False))
        policy.learn(rng)
        ours.append(time.perf_counter() - began)
        recall.append(float(env.measure_result().mean["recall@20"]))
    timings_path = run / "timings.json"
    timings = json.loads(timings_path.read_text()) if timings_path.exists() else {}
    retrain = sum(v for k, v in timings.items() if k.startswith("ciess_retrain_"))
    return {
        "our_step_seconds": float(np.median(ours)),
        "our_step_valid_recall@20": float(np.mean(recall)),
        "search_seconds": timings.get("search_seconds", float("nan")),
        "search_iterations": timings.get("search_iterations", 0),
        "search_seconds_per_iteration": timings.get("seconds_per_iteration", float("nan")),
        "retrain_seconds": retrain,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", default=None, help="a run directory with warm_start.pt")
    parser.add_argument("--paper-steps", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    add_tag_argument(parser, "ciess_search_cost")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    split, _ = prepare_split("ml-1m", "ciess", data_dir(), CIESSConfig().seed)
    results: dict[str, Any] = {"load_average_before": os.getloadavg()[0]}
    if args.paper_steps > 0:
        paper = time_paper_steps(split, args.paper_steps)
        iterations = CIESSConfig().episodes * CIESSConfig().iterations
        rows = [[part, seconds] for part, seconds in paper["parts"].items()]
        rows.append(["whole step", paper["step_seconds"]])
        print_table(["paper step, by part", "seconds"], rows)
        megabytes = paper["full_checkpoint_bytes"] / 1e6
        print(
            f"checkpoint at the end of a {iterations}-iteration search: "
            f"{paper['full_checkpoint_seconds']:.2f} s ({megabytes:.0f} MB)"
        )
        results.update(
            {
                "paper_steps": paper["steps"],
                "paper_step_seconds": paper["step_seconds"],
                "paper_step_training_seconds": paper["training_seconds"],
                "paper_full_checkpoint_seconds": paper["full_checkpoint_seconds"],
                "paper_full_checkpoint_bytes": paper["full_checkpoint_bytes"],
                "paper_search_hours": paper["step_seconds"] * iterations / 3600,
                **{f"paper_part:{part}": seconds for part, seconds in paper["parts"].items()},
            }
        )
    if args.run is not None:
        results.update(
            {"run": args.run, **time_warm_start_steps(Path(args.run), split, args.repeats)}
        )
    results["load_average_after"] = os.getloadavg()[0]
    print(write_results("ciess_search_cost", results, args.tag))


if __name__ == "__main__":
    main()
