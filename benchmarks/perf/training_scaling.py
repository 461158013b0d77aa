"""Time per training interaction as the data grows: MF and LightGCN on synthetic data.

For each size (interactions, in millions) the linear-time generator
(:func:`leanrec.data.synthetic.make_synthetic_power_law`: 50 interactions per user, half as many
items as users, so 0.5M is 10k x 5k and 20M is 400k x 200k) is split 80/10/10 per user, and each
model trains one BPR epoch (d = 64, batch 8192, one thread, the trainer's default embedding
optimiser) and then ranks every item for every test user once (train and validation masked).
LightGCN (2 layers) runs in each propagation mode asked for: ``auto`` (the default, recorded as
``default``: full propagation up to ``sampled_above_edges`` training edges, ``snapshot`` above),
``snapshot`` (a full propagation per epoch, each step corrected through the sampled edges among
the batch's nodes, fan-out 10), ``sampled`` (the batch's sampled two-hop neighbourhood) and
``full`` (the whole graph at every step). ``--embedding-optimizer`` trains with another
table optimiser than the trainer's default (``sparse_adam``).

Every measurement runs in a subprocess of its own, so its peak resident memory (``ru_maxrss``,
which includes generating the data) is its own, and a measurement that exceeds ``--cap-minutes``
is stopped and recorded as capped. Times are CPU seconds of the process (``process_time``), which
a busy shared machine inflates less than wall time; the wall time and the machine's load averages
(before and after) are recorded beside them.

At the largest sizes ``--max-epoch-interactions N`` runs the epoch over a random ``N`` of the
training interactions on the model and graph of the whole training set (every step costs what
a step of the whole epoch does, so the time per interaction is unchanged; what is done once per
epoch, the propagation snapshot and the row-wise optimiser's end-of-epoch flush (``O(N d)``:
every row catches up on the steps it skipped), is timed apart and counted once per whole epoch
in ``train_us_per_interaction``), and
``--max-eval-users N`` ranks every item for a random ``N`` of the test users (time per user).

Prints a table, writes ``results/training_scaling[--tag].json`` (after every measurement, so an
interrupted run keeps what it measured; ``--resume`` skips what the file already holds) and a plot
of time per training interaction against size, ``results/training_scaling[--tag].png``.
Run from the repository root:

    python -m benchmarks.perf.training_scaling [--sizes 0.5 2 5 20] [--modes mf lightgcn:auto]

``--repeats N`` times each first epoch ``N`` times on the data made once (a new model of the
same seed each time) and keeps the median: one timing of a 1-second epoch on a shared machine
moves by 10% with the load.

``--row-kernel 0.5 20`` instead times MF's steps with ``sparse_adam``'s compiled row kernel
and with its torch code in one process, in interleaved turns (:func:`compare_row_kernel`),
checks that both give the same bits, and writes ``results/training_scaling--row-kernel[-tag].json``.

``--profile 0.5 20`` instead times the phases of MF's epoch (negative sampling, forward with
the optimiser's catch-up, backward, optimiser step, flush) at those sizes, in turns of a few
steps each (:func:`profile_mf`), with the memory floor beside them (the rows each step reads
of the tables and of both Adam moments, only read and written back), and writes
``results/training_scaling--profile[-tag].json``.

The figures on the docs page were measured with ``--max-epoch-interactions 1000000
--max-eval-users 2000 --repeats 3``.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any, cast

from benchmarks.common import add_tag_argument, print_table, results_path, write_results

BATCH_SIZE = 8192
DIM = 64
LIGHTGCN_LAYERS = 2
FANOUT = 10


def measure(
    size_millions: float,
    model_name: str,
    propagation: str,
    seed: int,
    max_epoch_interactions: int = 0,
    max_eval_users: int = 0,
    fanout: int = FANOUT,
    embedding_optimizer: str | None = None,
    repeats: int = 1,
) -> dict[str, Any]:
    """One epoch and one full-ranking evaluation of ``model_name`` at ``size_millions``.

    ``max_epoch_interactions`` (0: all): the epoch runs over a random subset of this many
    training interactions, on the model and graph of the whole training set; every step costs
    what a step of the whole epoch costs, so the time per interaction is the same, measured in
    a fraction of the time. ``max_eval_users`` (0: all): rank for a random subset of the test
    users (each still against every item), reported per user. ``embedding_optimizer`` (None:
    the trainer's default) updates the tables. ``repeats``: the same first epoch (a new model
    and trainer of the same seed, the same interactions) is timed this many times on the data
    made once, and the figures are those of the repeat of median time per interaction (each
    repeat's time is recorded): one timing of a 1-second epoch on a shared machine moves by
    10% with the load."""
    import numpy as np
    import torch

    from leanrec.data.splits import ratio_split
    from leanrec.data.synthetic import make_synthetic_power_law
    from leanrec.evaluate import FullRankingEvaluator
    from leanrec.train import row_optim
    from leanrec.train.bpr import evaluate_model

    torch.set_num_threads(1)
    # sparse_adam's compiled row kernel is built (where it is not cached) and checked once per
    # process, at its first use: done here, so no timed epoch counts it
    row_optim.checked_row_kernel()
    load_before = os.getloadavg()
    began = time.perf_counter()
    data = make_synthetic_power_law(round(size_millions * 1e6), seed=seed)
    split = ratio_split(data, (0.8, 0.1, 0.1), seed=seed)
    generate_seconds = time.perf_counter() - began
    rng = np.random.default_rng(seed)
    epoch_data = split.train
    if 0 < max_epoch_interactions < len(split.train):
        chosen = np.sort(rng.choice(len(split.train), max_epoch_interactions, replace=False))
        epoch_data = split.train.subset(chosen)
    timings, model = [], None
    for _ in range(max(1, repeats)):
        model = None  # one model alive at a time: peak memory is that of one
        gc.collect()
        timing = _time_epoch(
            split.train, epoch_data, model_name, propagation, seed, fanout, embedding_optimizer
        )
        model = timing.pop("model")  # every repeat trains the same weights
        timings.append(timing)
    order = sorted(range(len(timings)), key=lambda i: timings[i]["train_us_per_interaction"])
    timing = timings[order[len(order) // 2]]
    load_after_training = os.getloadavg()

    test = split.test
    if max_eval_users > 0 and len(np.unique(test.users)) > max_eval_users:
        kept = rng.choice(np.unique(test.users), max_eval_users, replace=False)
        test = test.subset(np.flatnonzero(np.isin(test.users, kept)))
    evaluator = FullRankingEvaluator(test, exclude=[split.train, split.valid], ks=[20])
    assert model is not None  # at least one repeat ran
    cpu, wall = time.process_time(), time.perf_counter()
    evaluate_model(model, evaluator)
    eval_cpu, eval_wall = time.process_time() - cpu, time.perf_counter() - wall
    return {
        "propagation": getattr(model, "training_propagation", "-"),
        "users": data.n_users,
        "items": data.n_items,
        "interactions": len(data),
        "train_interactions": len(split.train),
        "epoch_interactions": len(epoch_data),
        "eval_users": len(evaluator.users),
        "generate_seconds": generate_seconds,
        **timing,
        "repeats": len(timings),
        "train_us_per_interaction_repeats": " ".join(
            f"{t['train_us_per_interaction']:.3f}" for t in timings
        ),
        "eval_cpu_seconds": eval_cpu,
        "eval_wall_seconds": eval_wall,
        "eval_us_per_user": 1e6 * eval_cpu / len(evaluator.users),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "load_1min_before": load_before[0],
        "load_1min_after_training": load_after_training[0],
        "load_5min_after_training": load_after_training[1],
    }


def _time_epoch(
    train: Any,
    epoch_data: Any,
    model_name: str,
    propagation: str,
    seed: int,
    fanout: int,
    embedding_optimizer: str | None,
) -> dict[str, Any]:
    """One first epoch of a new model on ``epoch_data`` (the graph and tables of ``train``),
    timed: the CPU time of its steps per interaction, plus what is done once per epoch (the
    snapshot, the optimiser's flush) counted once per whole epoch of ``train``; the trained
    model under ``"model"``."""
    from leanrec.models import build_model
    from leanrec.train.bpr import BPRTrainer, TrainerConfig

    options: dict[str, Any] = {"embedding_dim": DIM}
    if model_name == "lightgcn":
        options.update(n_layers=LIGHTGCN_LAYERS, propagation=propagation, fanout=fanout)
    model = build_model(model_name, train, options, seed=seed)
    config = TrainerConfig(
        max_epochs=1, batch_size=BATCH_SIZE, num_threads=1, seed=seed, progress=False
    )
    if embedding_optimizer:
        config = replace(config, embedding_optimizer=embedding_optimizer)
    trainer = BPRTrainer(model, epoch_data, None, config)
    snapshot_cpu = [0.0]
    if hasattr(model, "take_snapshot"):  # graph models: time the once-per-epoch snapshot apart
        take_snapshot = cast(Callable[[], Any], model.take_snapshot)

        def timed_snapshot() -> Any:
            began_snapshot = time.process_time()
            snapshot = take_snapshot()
            snapshot_cpu[0] += time.process_time() - began_snapshot
            return snapshot

        model.take_snapshot = timed_snapshot  # type: ignore[assignment]
    flush_cpu = [0.0]
    if hasattr(trainer.optimizer, "flush"):  # row-wise optimisers: the end-of-epoch catch-up
        flush = trainer.optimizer.flush

        def timed_flush() -> None:
            began_flush = time.process_time()
            flush()
            flush_cpu[0] += time.process_time() - began_flush

        trainer.optimizer.flush = timed_flush  # type: ignore[method-assign]
    cpu, wall = time.process_time(), time.perf_counter()
    trainer.fit()
    train_cpu, train_wall = time.process_time() - cpu, time.perf_counter() - wall
    n_train = len(epoch_data)
    per_epoch_cpu = snapshot_cpu[0] + flush_cpu[0]  # counted once per whole epoch
    steps_cpu = train_cpu - per_epoch_cpu
    return {
        "model": model,
        "embedding_optimizer": config.embedding_optimizer,
        "train_cpu_seconds": train_cpu,
        "train_wall_seconds": train_wall,
        "snapshot_cpu_seconds": snapshot_cpu[0],
        "flush_cpu_seconds": flush_cpu[0],
        "train_us_per_interaction": 1e6 * (steps_cpu / n_train + per_epoch_cpu / len(train)),
        "train_us_per_interaction_as_timed": 1e6 * train_cpu / n_train,
    }


PROFILE_PHASES = (
    "permutation",
    "negative sampling",
    "forward",
    "catch-up (in forward)",
    "backward",
    "optimiser step",
    "flush (per whole epoch)",
)
"""Where an MF epoch's CPU time goes (:func:`profile_mf`), in µs per training interaction;
``catch-up`` is the part of ``forward`` in which ``sparse_adam`` brings the rows read up to
date, ``permutation`` and ``flush`` (the end-of-epoch catch-up of every row) are counted once
per whole epoch."""
FLOOR = "memory floor (not in total)"
"""Timed beside the phases: reading and writing back, at random places, the rows a step reads
of each table and of both Adam moments (three ``(N, d)`` arrays per table), nothing else:
what moving those rows through the caches costs at a table's size, a lower bound on any
row-wise Adam step."""


def profile_mf(
    sizes: list[float], steps: int, seed: int = 0, embedding_optimizer: str | None = None
) -> dict[str, dict[str, float]]:
    """CPU µs per training interaction of each phase of MF's BPR epoch at each size, and the
    memory floor (:data:`FLOOR`) beside them.

    Every size's data, model and trainer are built first; then, in each of ``steps / 4``
    turns, every size in turn draws the negatives of ``min(1M, training interactions)``
    triples (as an epoch of the timing runs does) and takes 4 steps, each phase timed. A
    phase's figure is its median over the turns (after a first turn not timed: state
    allocated, pages touched), so a load that comes and goes on a shared machine weighs on
    every size alike and a turn it hit hard does not count. One thread,
    ``time.process_time``."""
    import statistics

    import numpy as np
    import torch

    from leanrec.data.splits import ratio_split
    from leanrec.data.synthetic import make_synthetic_power_law
    from leanrec.embeddings.base import sparse_gradients
    from leanrec.models import build_model
    from leanrec.train.bpr import BPRTrainer, TrainerConfig, bpr_loss
    from leanrec.train.row_optim import _gather as gather_rows
    from leanrec.train.row_optim import _scatter as copy_rows
    from leanrec.train.row_optim import flush_rows

    torch.set_num_threads(1)
    clock = time.process_time
    runs: dict[float, dict[str, Any]] = {}
    for size in sizes:
        data = make_synthetic_power_law(round(size * 1e6), seed=seed)
        split = ratio_split(data, (0.8, 0.1, 0.1), seed=seed)
        model = build_model("mf", split.train, {"embedding_dim": DIM}, seed=seed)
        config = TrainerConfig(
            max_epochs=1, batch_size=BATCH_SIZE, num_threads=1, seed=seed, progress=False
        )
        if embedding_optimizer:
            config = replace(config, embedding_optimizer=embedding_optimizer)
        trainer = BPRTrainer(model, split.train, None, config)
        began = clock()
        order = trainer.rng.permutation(len(split.train))
        permutation = (clock() - began) / len(split.train)
        order = order[: min(1_000_000, len(split.train))]
        runs[size] = {
            "trainer": trainer,
            "catch_up": getattr(trainer.optimizer, "catch_up", None),
            "users": split.train.users[order],
            "items": split.train.items[order],
            "train_interactions": len(split.train),
            "at": 0,
            "turns": {phase: [] for phase in (*PROFILE_PHASES, FLOOR)},
            "permutation": permutation,
        }
        print(f"profile {label(size)}: {data.n_users} x {data.n_items}", flush=True)

    def floor(run: dict[str, Any], batches: list[slice], negatives: Any) -> float:
        """Seconds per interaction of gathering and scattering back (the same values) the
        distinct rows each batch reads of every table's weight and Adam moments, as the
        row-wise optimiser copies rows; the arrays are the trainer's own."""
        trainer = run["trainer"]
        user_table, item_table = trainer.model.id_tables()
        work = []
        for batch in batches:
            users = torch.from_numpy(np.unique(run["users"][batch]))
            read = np.concatenate([run["items"][batch], negatives[batch].reshape(-1)])
            items = torch.from_numpy(np.unique(read))
            for table, rows in ((user_table, users), (item_table, items)):
                weight = table.weight
                state = trainer.optimizer.state.get(weight, {})
                arrays = [weight.data] + [state[k] for k in ("exp_avg", "exp_avg_sq") if k in state]
                work += [(array, rows) for array in arrays]
        began = clock()
        for array, rows in work:
            copy_rows(array, rows, gather_rows(array, rows))
        return (clock() - began) / (len(batches) * BATCH_SIZE)

    def turn(run: dict[str, Any]) -> dict[str, float]:
        """One turn of a size: its sampling and 4 steps; seconds per interaction by phase."""
        trainer, catch_up = run["trainer"], run["catch_up"]
        spent = dict.fromkeys(PROFILE_PHASES, 0.0)

        def timed_catch_up(parameter: torch.Tensor, index: torch.Tensor | None) -> Any:
            began = clock()
            rows = catch_up(parameter, index)  # the lookup reads the rows it returns
            spent["catch-up (in forward)"] += clock() - began
            return rows

        began = clock()
        negatives_all = trainer.sampler.sample(run["users"])
        spent["negative sampling"] = (clock() - began) / len(run["users"])
        stepped = 0
        batches = []
        for _ in range(4):
            start = run["at"] if run["at"] + BATCH_SIZE <= len(run["users"]) else 0
            run["at"] = start + BATCH_SIZE
            batch = slice(start, start + BATCH_SIZE)
            batches.append(batch)
            users = torch.from_numpy(run["users"][batch])
            positives = torch.from_numpy(run["items"][batch])
            negatives = torch.from_numpy(negatives_all[batch])
            hook = timed_catch_up if catch_up is not None else None
            with sparse_gradients(trainer.tables, hook is not None, hook):
                began = clock()
                loss = bpr_loss(trainer.model, users, positives, negatives, trainer.config.l2)
                forward = clock()
                trainer.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                backward = clock()
                trainer.optimizer.step()
                spent["optimiser step"] += clock() - backward
            spent["forward"] += forward - began
            spent["backward"] += backward - forward
            stepped += len(users)
        for phase in ("forward", "catch-up (in forward)", "backward", "optimiser step"):
            spent[phase] /= stepped
        spent[FLOOR] = floor(run, batches, negatives_all)
        return spent

    for run in runs.values():
        turn(run)  # not timed
    for _ in range(max(1, steps // 4)):
        for run in runs.values():
            for phase, seconds in turn(run).items():
                run["turns"][phase].append(seconds)
    table: dict[str, dict[str, float]] = {}
    for size, run in runs.items():
        began = clock()
        flush_rows(run["trainer"].optimizer)
        flush = (clock() - began) / run["train_interactions"]
        phases = {phase: statistics.median(values) for phase, values in run["turns"].items()}
        phases.update({"permutation": run["permutation"], "flush (per whole epoch)": flush})
        table[label(size)] = {phase: 1e6 * phases[phase] for phase in PROFILE_PHASES}
        table[label(size)]["total"] = sum(
            v for k, v in table[label(size)].items() if k != "catch-up (in forward)"
        )
        table[label(size)][FLOOR] = 1e6 * phases[FLOOR]
    return table


def compare_row_kernel(
    sizes: list[float],
    turns: int,
    steps: int = 4,
    seed: int = 0,
    model_name: str = "mf",
    batch_size: int = BATCH_SIZE,
) -> dict[str, dict[str, Any]]:
    """MF's (or ``model_name``'s: ``lightgcn`` in its default propagation, 2 layers)
    training steps with ``sparse_adam``'s compiled row kernel and with its torch code
    (:func:`leanrec.train.row_optim.use_row_kernel`), in one process, at each size: CPU µs per
    training interaction of forward, backward and optimiser step, each the median over
    ``turns`` turns of ``steps`` steps of ``batch_size`` on the same batches for both
    (negatives drawn once per turn, the order of the two alternating from turn to turn, a
    first turn not timed), so both see the same load and the same caches; and whether the
    two models' weights and optimiser states are equal to the last bit after all the turns."""
    import statistics

    import numpy as np
    import torch

    from leanrec.data.splits import ratio_split
    from leanrec.data.synthetic import make_synthetic_power_law
    from leanrec.embeddings.base import sparse_gradients
    from leanrec.models import build_model
    from leanrec.train import row_optim
    from leanrec.train.bpr import BPRTrainer, TrainerConfig, bpr_loss

    torch.set_num_threads(1)
    clock = time.process_time
    variants = ("torch", "kernel")
    runs: dict[float, dict[str, Any]] = {}
    for size in sizes:
        data = make_synthetic_power_law(round(size * 1e6), seed=seed)
        split = ratio_split(data, (0.8, 0.1, 0.1), seed=seed)
        config = TrainerConfig(
            max_epochs=1, batch_size=batch_size, num_threads=1, seed=seed, progress=False
        )
        options: dict[str, Any] = {"embedding_dim": DIM}
        if model_name == "lightgcn":
            options.update(n_layers=LIGHTGCN_LAYERS, fanout=FANOUT)
        trainers = {
            variant: BPRTrainer(
                build_model(model_name, split.train, options, seed=seed),
                split.train,
                None,
                config,
            )
            for variant in variants
        }
        for trainer in trainers.values():
            trainer.model.train()
        order = np.random.default_rng(seed).permutation(len(split.train))[:1_000_000]
        runs[size] = {
            "trainers": trainers,
            "users": split.train.users[order],
            "items": split.train.items[order],
            "at": 0,
            "times": {variant: [] for variant in variants},
        }
        print(f"row kernel {model_name} {label(size)}: {data.n_users} x {data.n_items}", flush=True)

    def timed_steps(trainer: BPRTrainer, batches: Sequence[tuple[torch.Tensor, ...]]) -> float:
        catch_up = getattr(trainer.optimizer, "catch_up", None)
        began = clock()
        for users, positives, negatives in batches:
            with sparse_gradients(trainer.tables, catch_up is not None, catch_up):
                loss = bpr_loss(trainer.model, users, positives, negatives, trainer.config.l2)
                trainer.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                trainer.optimizer.step()
        return (clock() - began) / (len(batches) * batch_size)

    try:
        for turn in range(turns + 1):
            for run in runs.values():
                batches = []
                for _ in range(steps):
                    start = run["at"] if run["at"] + batch_size <= len(run["users"]) else 0
                    run["at"] = start + batch_size
                    users = run["users"][start : start + batch_size]
                    negatives = run["trainers"]["kernel"].sampler.sample(users)
                    batches.append(
                        (
                            torch.from_numpy(users),
                            torch.from_numpy(run["items"][start : start + batch_size]),
                            torch.from_numpy(negatives),
                        )
                    )
                for variant in variants if turn % 2 == 0 else variants[::-1]:
                    row_optim.use_row_kernel(variant == "kernel")
                    # the same draws for both (LightGCN's snapshot samples edges from torch's
                    # default generator)
                    torch.manual_seed(seed + turn)
                    seconds = timed_steps(run["trainers"][variant], batches)
                    if turn > 0:
                        run["times"][variant].append(seconds)
    finally:
        row_optim.use_row_kernel(True)
    table: dict[str, dict[str, Any]] = {}
    for size, run in runs.items():
        torch_run, kernel_run = (run["trainers"][variant] for variant in variants)
        weights = zip(
            torch_run.model.state_dict().values(),
            kernel_run.model.state_dict().values(),
            strict=True,
        )
        states = (torch_run.optimizer.state_dict(), kernel_run.optimizer.state_dict())
        same_state = all(
            torch.equal(value, states[1]["state"][key][name])
            for key, values in states[0]["state"].items()
            for name, value in values.items()
        )
        medians = {v: 1e6 * statistics.median(run["times"][v]) for v in variants}
        table[label(size)] = {
            **{f"{v}_us_per_interaction": medians[v] for v in variants},
            "kernel_over_torch": medians["kernel"] / medians["torch"],
            "bit_identical": same_state
            and all(torch.equal(a.view(torch.int32), b.view(torch.int32)) for a, b in weights),
        }
    return table


def run_measurement(
    size: float, model_name: str, propagation: str, args: argparse.Namespace
) -> dict[str, Any]:
    """:func:`measure` in a subprocess; ``{"capped": True}`` if it outlives the cap."""
    cap_minutes = args.cap_minutes
    command = [sys.executable, "-m", "benchmarks.perf.training_scaling", "--worker"]
    command += [str(size), model_name, propagation, str(args.seed)]
    command += ["--max-epoch-interactions", str(args.max_epoch_interactions)]
    command += ["--max-eval-users", str(args.max_eval_users), "--fanout", str(args.fanout)]
    command += ["--repeats", str(args.repeats)]
    if args.embedding_optimizer:
        command += ["--embedding-optimizer", args.embedding_optimizer]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=cap_minutes * 60, check=False
        )
    except subprocess.TimeoutExpired:
        return {"capped": True, "cap_minutes": cap_minutes}
    if done.returncode != 0:
        return {"failed": True, "error": done.stderr.strip().splitlines()[-1][:300]}
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def add_default_mode(record: dict[str, Any], sizes: list[float]) -> None:
    """``lightgcn_default_<size>_*`` for a run that measured ``full`` and ``sampled`` but not
    ``auto`` itself: the measurement of the mode the default picked when it chose between
    those two (full up to ``sampled_above_edges`` training edges, sampled above)."""
    from leanrec.models.lightgcn import LightGCNConfig

    threshold = LightGCNConfig().sampled_above_edges
    record["lightgcn_sampled_above_edges"] = threshold
    for size in sizes:
        edges = record.get(f"mf_-_{label(size)}_train_interactions")
        if edges is None:
            continue
        mode = "sampled" if edges > threshold else "full"
        measured = {
            k[len(f"lightgcn_{mode}_{label(size)}_") :]: v
            for k, v in record.items()
            if k.startswith(f"lightgcn_{mode}_{label(size)}_")
        }
        if "train_us_per_interaction" in measured:
            record.update({f"lightgcn_default_{label(size)}_{k}": v for k, v in measured.items()})
            record[f"lightgcn_default_{label(size)}_mode"] = mode


def label(size: float) -> str:
    return f"{size:g}M"


def plot(
    record: dict[str, Any], runs: list[tuple[str, str]], sizes: list[float], tag: str | None
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4))
    for model_name, propagation in runs:
        key = f"{model_name}_{propagation}"
        points = [
            (size, record[f"{key}_{label(size)}_train_us_per_interaction"])
            for size in sizes
            if f"{key}_{label(size)}_train_us_per_interaction" in record
        ]
        if points:
            name = model_name if model_name == "mf" else f"{model_name} ({propagation})"
            style = "--" if propagation == "default" else "-"
            ax.plot(*zip(*points), style, marker="o", label=name)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("interactions (millions)")
    ax.set_ylabel("CPU µs per training interaction (one epoch)")
    ax.set_title("training cost per interaction, one thread, d = 64, batch 8192")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    fig.tight_layout()
    fig.savefig(results_path("training_scaling", tag, ".png"), dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=float, nargs="+", default=[0.5, 2, 5, 20])
    parser.add_argument(
        "--modes",
        nargs="+",
        default=["mf", "lightgcn:auto"],
        help="model[:propagation] to measure",
    )
    parser.add_argument(
        "--full-up-to", type=float, default=2, help="largest size (M) for full propagation"
    )
    parser.add_argument("--cap-minutes", type=float, default=60.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument(
        "--report-only", action="store_true",
        help="measure nothing: the table, ratios and plot of what the results file holds",
    )  # fmt: skip
    parser.add_argument(
        "--max-epoch-interactions", type=int, default=0,
        help="epoch over at most this many training interactions (0: all; see measure)",
    )  # fmt: skip
    parser.add_argument(
        "--max-eval-users", type=int, default=0, help="rank for at most this many test users"
    )
    parser.add_argument("--fanout", type=int, default=FANOUT, help="sampled LightGCN's fan-out")
    parser.add_argument(
        "--repeats", type=int, default=1,
        help="time each first epoch this many times on the same data, keep the median",
    )  # fmt: skip
    parser.add_argument(
        "--embedding-optimizer", default=None, help="table optimiser (default: the trainer's)"
    )
    parser.add_argument(
        "--profile", type=float, nargs="+", default=None, metavar="SIZE",
        help="instead: where MF's epoch time goes at these sizes, interleaved (profile_mf)",
    )  # fmt: skip
    parser.add_argument("--profile-steps", type=int, default=40)
    parser.add_argument(
        "--row-kernel", type=float, nargs="+", default=None, metavar="SIZE",
        help="instead: MF's steps with and without the compiled row kernel, interleaved",
    )  # fmt: skip
    parser.add_argument("--row-kernel-turns", type=int, default=12)
    parser.add_argument("--row-kernel-model", default="mf", choices=["mf", "lightgcn"])
    parser.add_argument("--worker", nargs=4, metavar=("SIZE", "MODEL", "MODE", "SEED"))
    add_tag_argument(parser)
    args = parser.parse_args()
    if args.profile:
        table = profile_mf(args.profile, args.profile_steps, args.seed, args.embedding_optimizer)
        sizes = list(table)
        print_table(
            ["phase (CPU µs / interaction)", *sizes, f"{sizes[-1]} / {sizes[0]}"],
            [
                [phase, *(table[s][phase] for s in sizes),
                 table[sizes[-1]][phase] / max(table[sizes[0]][phase], 1e-9)]
                for phase in (*PROFILE_PHASES, "total", FLOOR)
            ],
        )  # fmt: skip
        profile_record: dict[str, Any] = {
            "profile_steps": args.profile_steps,
            "embedding_optimizer": args.embedding_optimizer or "default",
            "load_1min": os.getloadavg()[0],
        }
        for size, phases in table.items():
            profile_record.update({f"{size}_{phase}": value for phase, value in phases.items()})
        tag = f"profile-{args.tag}" if args.tag else "profile"
        print(f"wrote {write_results('training_scaling', profile_record, tag)}")
        return
    if args.row_kernel:
        kernel_table = compare_row_kernel(
            args.row_kernel, args.row_kernel_turns, seed=args.seed, model_name=args.row_kernel_model
        )
        sizes = list(kernel_table)
        print_table(
            ["size", "torch µs / interaction", "kernel µs / interaction", "kernel / torch",
             "bit-identical"],
            [[size, r["torch_us_per_interaction"], r["kernel_us_per_interaction"],
              r["kernel_over_torch"], r["bit_identical"]] for size, r in kernel_table.items()],
        )  # fmt: skip
        kernel_record: dict[str, Any] = {
            "model": args.row_kernel_model,
            "turns": args.row_kernel_turns,
            "steps_per_turn": 4,
            "load_1min": os.getloadavg()[0],
        }
        for size, values in kernel_table.items():
            kernel_record.update({f"{size}_{key}": value for key, value in values.items()})
        for variant in ("torch", "kernel"):
            first, last = (
                kernel_table[s][f"{variant}_us_per_interaction"] for s in (sizes[0], sizes[-1])
            )
            kernel_record[f"{variant}_ratio_{sizes[-1]}_over_{sizes[0]}"] = last / first
        tag = "row-kernel" + ("-lightgcn" if args.row_kernel_model == "lightgcn" else "")
        tag = f"{tag}-{args.tag}" if args.tag else tag
        print(f"wrote {write_results('training_scaling', kernel_record, tag)}")
        return
    if args.worker:
        size, model_name, propagation, seed = args.worker
        result = measure(
            float(size), model_name, propagation, int(seed),
            args.max_epoch_interactions, args.max_eval_users, args.fanout,
            args.embedding_optimizer, args.repeats,
        )  # fmt: skip
        print(json.dumps(result))
        return

    runs = [(m.partition(":")[0], m.partition(":")[2] or "-") for m in args.modes]
    names = {"auto": "default"}  # the key of LightGCN's default mode in the record
    record: dict[str, Any] = {
        "sizes_millions": " ".join(label(s) for s in args.sizes),
        "batch_size": BATCH_SIZE,
        "dim": DIM,
        "lightgcn_layers": LIGHTGCN_LAYERS,
        "fanout": args.fanout,
        "cap_minutes": args.cap_minutes,
        "full_up_to_millions": args.full_up_to,
        "max_epoch_interactions": args.max_epoch_interactions,
        "max_eval_users": args.max_eval_users,
        "embedding_optimizer": args.embedding_optimizer or "default",
        "repeats": args.repeats,
    }
    path = results_path("training_scaling", args.tag)
    if (args.resume or args.report_only) and path.exists():
        record.update(
            {k: v for k, v in json.loads(path.read_text()).items() if k not in ("script", "tag")}
        )
    for size in args.sizes:
        for model_name, propagation in runs:
            prefix = f"{model_name}_{names.get(propagation, propagation)}_{label(size)}"
            if propagation == "full" and size > args.full_up_to:
                continue
            if args.report_only or (
                args.resume and any(k.startswith(prefix + "_") for k in record)
            ):
                continue
            result = run_measurement(size, model_name, propagation, args)
            record.update({f"{prefix}_{k}": v for k, v in result.items()})
            print(f"{prefix}: {result}", flush=True)
            write_results("training_scaling", record, args.tag)

    runs = [(m, names.get(p, p)) for m, p in runs]
    if ("lightgcn", "default") not in runs and any(m == "lightgcn" for m, _ in runs):
        add_default_mode(record, args.sizes)  # from the full and sampled measurements
        runs.append(("lightgcn", "default"))
    rows = []
    for model_name, propagation in runs:
        key = f"{model_name}_{propagation}"
        measured = [s for s in args.sizes if f"{key}_{label(s)}_train_us_per_interaction" in record]
        for s in measured:
            r = {k[len(f"{key}_{label(s)}_") :]: v for k, v in record.items()
                 if k.startswith(f"{key}_{label(s)}_")}  # fmt: skip
            rows.append(
                [key, label(s), f"{r['users']}x{r['items']}", r["train_cpu_seconds"],
                 r["train_us_per_interaction"], r["eval_cpu_seconds"], r["peak_rss_mib"]]
            )  # fmt: skip
        if len(measured) >= 2:
            first, last = (record[f"{key}_{label(s)}_train_us_per_interaction"]
                           for s in (measured[0], measured[-1]))  # fmt: skip
            record[f"{key}_ratio_{label(measured[-1])}_over_{label(measured[0])}"] = last / first
    print_table(
        ["model", "size", "users x items", "train CPU s", "µs / interaction", "eval CPU s",
         "peak RSS MiB"],
        rows,
    )  # fmt: skip
    ratios = {k: v for k, v in record.items() if "_ratio_" in k}
    for key, value in ratios.items():
        print(f"{key}: {value:.2f}x per interaction")
    from leanrec.models.lightgcn import LightGCNConfig

    print("(MF does the same work per interaction at every size: its ratio is what larger tables")
    print(" missing the cache cost; LightGCN default: full propagation up to")
    print(f" {LightGCNConfig().sampled_above_edges} training edges, snapshot above)")
    print(f"wrote {write_results('training_scaling', record, args.tag)}")
    plot(record, runs, args.sizes, args.tag)


if __name__ == "__main__":
    main()
