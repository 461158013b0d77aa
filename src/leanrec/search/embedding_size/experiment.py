"""The paper-style experiment: CIESS and its baselines at several budgets (CIESS Table 1).

``leanrec experiment embedding-size --dataset ml-1m --model lightgcn`` (or
:func:`leanrec.api.embedding_size.search_embedding_sizes`) runs, in one resumable run directory:

1. the full-size models: the warm start (pretraining with prefix dropout, ``warm_start.pt``)
   and, for pruners on ``pruning_base="ordinary"``, the ordinary model (``ordinary.pt``);
2. every method of :data:`~leanrec.search.embedding_size.baselines.METHODS` the experiment
   names, at every target sparsity ``c``: the searches (checkpointed every iteration) and the
   selective retraining of their masks (Eq. 15-16), the row-size baselines, the pruners;
   each (method, ``c``) is one row of ``rows.json``, tested once its model was chosen on
   validation (inside :func:`~leanrec.runner.final.final_evaluation`);
3. ``results.json``, ``table.md`` and three PNGs (reward and size per episode, learned size
   against popularity, quality against sparsity), plus for each ``c`` the searched model as a
   masked checkpoint, as packed safetensors and as its sizes.

Every stage writes its output before the next starts, and a stage already done is skipped when
the experiment is run again, so a killed experiment loses at most the stage in progress (and
the searches, pretrainings and retrainings resume from their own checkpoints).
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from leanrec.data.interactions import Split
from leanrec.data.presets import prepare_split
from leanrec.models.base import Recommender
from leanrec.runner.executors import search_executor
from leanrec.runner.final import final_evaluation
from leanrec.runner.resume import check_resumable
from leanrec.runner.rundir import Log, RowStore, RunDirectory
from leanrec.search.base import ExperimentResult
from leanrec.search.embedding_size.baselines import (
    ELEMENT_PRUNERS,
    METHODS,
    EmbeddingSizeMethod,
    MethodContext,
)
from leanrec.search.embedding_size.config import EmbeddingSizeExperiment, preset_label
from leanrec.search.embedding_size.deadline import check_time_limit
from leanrec.search.embedding_size.policy import SearchResult
from leanrec.search.embedding_size.retrain import (
    pretrain_warm_start,
    save_model_with_ids,
    test_metrics,
)
from leanrec.train.bpr import EpochHook
from leanrec.train.checkpoint import load_checkpoint

REFERENCE_ROWS = ("full", "full_ordinary")
"""Rows of the uncompressed models: the warm start and, with ``pruning_base="ordinary"``,
the ordinary full-size model."""
TABLE_METRICS = ("recall@5", "recall@20", "ndcg@5", "ndcg@20")
RESUMABLE_CHANGES = (
    "out_dir", "data_dir", "methods", "search.target_sparsities", "search.num_threads",
    "search.executor", "search.executor_cpus_per_job", "search.progress",
    *(f"search.{stage}.{knob}" for stage in ("pretrain", "retrain")
      for knob in ("num_threads", "progress", "eval_batch_size")),
)  # fmt: skip
"""Settings a rerun in an existing run directory may change: where it writes and reads, which
methods or budgets are added (they add rows without changing the stored ones) and how the work
is run; any other change is refused before anything is written
(:func:`~leanrec.runner.resume.check_resumable`)."""
ROW_KEY = ("method", "target_sparsity")
"""A row of ``rows.json`` is one (method, ``c``); the reference rows have ``c = 0``."""


def run_experiment(
    experiment: EmbeddingSizeExperiment, log: Log = print, split: Split | None = None
) -> ExperimentResult:
    """Run (or resume) the experiment in ``experiment.out_dir``.

    Args:
        experiment: what to run (dataset, model, methods, search and budgets).
        log: where stage lines go (besides ``run.log``).
        split: the train/valid/test split to use instead of the experiment's dataset (in-memory
            data, e.g. for tests); None: ``experiment.dataset`` split by its protocol.

    Returns:
        The rows (one per method and ``c``, plus the full-size references), the summary
        written to ``results.json``, and the searched models as artefacts.
    """
    cfg = experiment.search
    methods = METHODS.resolve(experiment.methods)
    check_resumable(
        experiment, experiment.out_dir, EmbeddingSizeExperiment(), RESUMABLE_CHANGES, None
    )
    run = RunDirectory(experiment.out_dir, config=experiment, log=log)
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    if split is None:
        split_seed = cfg.seed if experiment.split_seed is None else experiment.split_seed
        split, _ = prepare_split(
            experiment.dataset, experiment.protocol, experiment.data_dir, split_seed
        )
    rows = run.rows(key=ROW_KEY)
    label = preset_label(experiment)
    run.log(f"preset: {label}")
    # the masks of each budget's retraining and screen are the executor's jobs; a Ray cluster
    # is joined (or a local one started) at the first of them and left at the end
    with search_executor(cfg.executor, cfg.executor_cpus_per_job, desc="masks") as executor:
        context = MethodContext(
            experiment,
            split,
            run,
            on_epoch=epoch_logger(run.log),
            timings=run.read_json("timings.json", default={}),
            executor=executor,
        )
        _prepare_full_size_models(context, methods, rows)
        # method-major: every budget of the first methods is done before the next one starts
        for method in methods:
            for target in cfg.target_sparsities:
                if rows.has(method=method.name, target_sparsity=target):
                    continue
                outcome = method.run(context, target)
                if outcome.model is None:  # not reached: no model to test
                    test: dict[str, float] = {}
                else:
                    with final_evaluation():
                        test = test_metrics(outcome.model, split)
                fields = {"preset": label, **outcome.fields}
                rows.add(_row(method.name, target, outcome.sparsity, test, **fields))

    summary = _summary(experiment, split, rows.rows, context.timings)
    run.write_results(summary)
    run.write_table(markdown_table(rows.rows, cfg.target_sparsities))
    _plots(run, context.searches.get("ciess"), rows.rows, split)
    return ExperimentResult("embedding_size", run, rows.rows, summary, _artifacts(run))


def _row(
    method: str, target: float, sparsity: float, test: dict[str, float], **fields: Any
) -> dict[str, Any]:
    row: dict[str, Any] = {"method": method, "target_sparsity": target, "sparsity": sparsity}
    row.update({f"test_{k}": v for k, v in test.items()})
    row.update(fields)
    return row


def epoch_logger(log: Log) -> EpochHook:
    """The trainers' per-epoch hook: one line per validation (epoch 0: the starting weights).

    A validated epoch is one the trainer has just checkpointed (it saves before it calls the
    hook), so it is also where a run inside :func:`~.deadline.time_limit` may stop."""

    def log_epoch(epoch: int, record: dict[str, float]) -> None:
        if "valid_recall@20" in record and "loss" not in record:  # validate_initial
            log(f"  epoch 0 (start): valid recall@20 {record['valid_recall@20']:.4f}")
        elif "valid_recall@20" in record:
            log(
                f"  epoch {epoch}: loss {record['loss']:.4f} "
                f"valid recall@20 {record['valid_recall@20']:.4f} "
                f"({record['train_seconds']:.1f} s)"
            )
        if any(key.startswith("valid_") for key in record):
            check_time_limit(f"epoch {epoch}'s checkpoint")

    return log_epoch


# ------------------------------------------------------------------- full-size models
def _prepare_full_size_models(
    context: MethodContext, methods: list[EmbeddingSizeMethod], rows: RowStore
) -> None:
    """Train (or load) the full-size models the methods need, and test each once as a
    reference row: the warm start (``full``) for the searches, for retraining from it and for
    pruners on ``pruning_base="warm_start"``; the ordinary model (``full_ordinary``) for
    pruners on ``pruning_base="ordinary"``. A run that needs no warm start trains none."""
    experiment = context.experiment
    if any(method.needs_warm_start(experiment) for method in methods):
        context.warm_model = _full_size_model(context, prefix_dropout=True)
        context.warm_state = _copy_state(context.warm_model)
        _add_reference_row(rows, "full", context.warm_model, context.split)
    context.prune_model = context.warm_model
    if any(method.needs_ordinary_model(experiment) for method in methods):
        ordinary = _full_size_model(context, prefix_dropout=False)
        _add_reference_row(rows, "full_ordinary", ordinary, context.split)
        context.ordinary_state = _copy_state(ordinary)
        if experiment.pruning_base == "ordinary":
            context.prune_model = ordinary
    if context.prune_model is not None:
        context.prune_state = _copy_state(context.prune_model)


def _copy_state(model: Recommender) -> dict[str, torch.Tensor]:
    return {name: value.clone() for name, value in model.state_dict().items()}


def _add_reference_row(rows: RowStore, name: str, model: Recommender, split: Split) -> None:
    if not rows.has(method=name, target_sparsity=0.0):
        with final_evaluation():
            test = test_metrics(model, split)
        rows.add(_row(name, 0.0, 0.0, test))


def _full_size_model(context: MethodContext, prefix_dropout: bool) -> Recommender:
    """The warm start (prefix dropout) or the ordinary model, trained once and cached in
    ``warm_start.pt`` / ``ordinary.pt`` (its pretraining resumable from ``*_state.pt``)."""
    exp, cfg, split, run = context.experiment, context.config, context.split, context.run
    name = "warm_start" if prefix_dropout else "ordinary"
    path = run.file(f"{name}.pt")
    if path.exists():
        from leanrec.models.registry import model_from_checkpoint

        state = load_checkpoint(path)
        _check_fits_split(state, exp, split, str(path))
        return model_from_checkpoint(state)
    init_state = _initial_warm_state(exp, split) if prefix_dropout else None
    source = f" from {exp.warm_start_init}" if init_state is not None else ""
    how = "with prefix dropout" if prefix_dropout else "without prefix dropout (ordinary)"
    run.log(f"pretraining the full-size {exp.model} (d_max = {cfg.max_dim}) {how}{source}")
    state_path = run.file("pretrain_state.pt" if prefix_dropout else "ordinary_state.pt")
    model, pretrained = pretrain_warm_start(
        split,
        exp.model,
        exp.model_options,
        cfg.max_dim,
        dataclasses.replace(cfg.pretrain, progress=cfg.progress),
        cfg.seed,
        checkpoint_path=state_path,
        on_epoch=context.on_epoch,
        init_state=init_state,
        prefix_dropout=prefix_dropout,
    )
    # the trainer's clock, which a resumed pretraining carries over from its killed legs
    key = "pretrain_seconds" if prefix_dropout else "ordinary_pretrain_seconds"
    context.record_timings(**{key: pretrained.seconds})
    save_model_with_ids(model, split, path)
    state_path.unlink(missing_ok=True)
    return model


def _initial_warm_state(
    exp: EmbeddingSizeExperiment, split: Split
) -> dict[str, torch.Tensor] | None:
    """The weights of ``exp.warm_start_init``, checked against this experiment's split and model."""
    if exp.warm_start_init is None:
        return None
    path = Path(exp.warm_start_init)
    if not path.exists():
        raise FileNotFoundError(f"warm_start_init: no such checkpoint {path}")
    state = load_checkpoint(path)
    _check_fits_split(state, exp, split, f"warm_start_init {path}")
    return dict(state["state_dict"])


def _check_fits_split(
    state: dict[str, Any], exp: EmbeddingSizeExperiment, split: Split, what: str
) -> None:
    """Raise if a saved full-size model was not trained on this run's training split.

    A model trained on another split (another ``split_seed``) has seen this split's validation
    and test interactions: starting from it would leak them into every score."""
    problems = []
    if state.get("model") != exp.model:
        problems.append(f"model {state.get('model')!r}, this run {exp.model!r}")
    dim = state.get("config", {}).get("embedding_dim")
    if dim != exp.search.max_dim:
        problems.append(f"embedding_dim {dim}, this run's d_max {exp.search.max_dim}")
    for role, vocab in (("user", split.train.user_vocab), ("item", split.train.item_vocab)):
        if list(state.get(f"{role}_ids", [])) != vocab.raw_ids.tolist():
            problems.append(f"its {role} ids differ from this split's")
    if not problems:
        indptr, indices = split.train.user_items()
        weights = state["state_dict"]
        # both are the sorted CSR of the training matrix (Recommender.attach)
        if not (
            np.array_equal(weights["seen_indptr"].numpy(), indptr)
            and np.array_equal(weights["seen_indices"].numpy(), indices)
        ):
            problems.append(
                "it was trained on other training interactions (another split seed?), so it "
                "has seen this split's validation and test data"
            )
    if problems:
        raise ValueError(f"{what} does not fit this run: {'; '.join(problems)}")


# ------------------------------------------------------------------------------ reports
def _artifacts(run: RunDirectory) -> dict[str, Path]:
    """The models a user takes away: the full-size models and, per ``c``, the searched model
    (masked checkpoint, packed safetensors, sizes)."""
    found: dict[str, Path] = {}
    for name in ("warm_start", "ordinary"):
        if (run.path / f"{name}.pt").exists():
            found[name] = run.path / f"{name}.pt"
    for sizes in sorted(run.path.glob("ciess_c*_sizes.npz")):
        stem = sizes.name.removesuffix("_sizes.npz")
        for suffix, path in (
            ("", run.path / f"{stem}.pt"),
            ("_packed", run.path / f"{stem}.safetensors"),
            ("_sizes", sizes),
        ):
            if path.exists():
                found[stem + suffix] = path
    return found


def _summary(
    exp: EmbeddingSizeExperiment,
    split: Split,
    rows: list[dict[str, Any]],
    timings: dict[str, float],
) -> dict[str, Any]:
    return {
        "dataset": exp.dataset,
        "model": exp.model,
        "protocol": exp.protocol,
        "users": split.train.n_users,
        "items": split.train.n_items,
        "train_interactions": len(split.train),
        "preset": preset_label(exp),
        "reward_lambda": exp.search.reward_lambda,
        "reward_lambda_final": exp.search.reward_lambda_final,
        "noise": exp.search.noise,
        "random_walk": exp.search.random_walk,
        "episodes": exp.search.episodes,
        "iterations": exp.search.iterations,
        "timings": timings,
        "rows": rows,
        "written": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }


def markdown_table(rows: list[dict[str, Any]], targets: tuple[float, ...]) -> str:
    """CIESS Table 1 layout: per target sparsity, one line per method."""
    header = "| c | method | sparsity | R@5 | R@20 | N@5 | N@20 |\n|---|---|---|---|---|---|---|\n"
    lines = []
    full = [r for r in rows if r["method"] in REFERENCE_ROWS]
    for r in full:
        lines.append(_table_line("—", r))
    for target in targets:
        for r in rows:
            if r["method"] not in REFERENCE_ROWS and r["target_sparsity"] == target:
                lines.append(_table_line(f"{target:.0%}", r))
    return header + "\n".join(lines) + "\n"


def _table_line(target: str, row: dict[str, Any]) -> str:
    if row.get("reached") is False:
        best = f"searched masks reach {row['sparsity']:.2%} at most"
        return f"| {target} | {row['method']} | not reached | {best} | | | |"
    values = " | ".join(f"{row.get('test_' + m, float('nan')):.4f}" for m in TABLE_METRICS)
    return f"| {target} | {row['method']} | {row['sparsity']:.2%} | {values} |"


PLOT_SIZE = (6.0, 3.5)
"""Inches of every plot of the experiment."""


def _plots(
    run: RunDirectory, search: SearchResult | None, rows: list[dict[str, Any]], split: Split
) -> None:
    """``search_curve.png`` (when the search ran in this call), ``size_vs_popularity.png`` (the
    middle budget's searched sizes) and ``quality_vs_sparsity.png``."""
    if search is not None and search.history:
        _plot_search_curve(run, search.history)
    sizes_files = sorted(run.path.glob("ciess_c*_sizes.npz"))
    if sizes_files:
        middle = sizes_files[len(sizes_files) // 2]
        data = np.load(middle)
        with run.figure("size_vs_popularity.png", size=PLOT_SIZE) as (_, axes):
            ax = axes[0, 0]
            ax.scatter(split.train.user_popularity(), data["users"], s=3, alpha=0.4, label="users")
            ax.scatter(split.train.item_popularity(), data["items"], s=3, alpha=0.4, label="items")
            ax.set_xscale("log")
            ax.set_xlabel("training interactions (popularity)")
            ax.set_ylabel("learned embedding size")
            ax.set_title(f"CIESS sizes ({middle.stem})")
            ax.legend()
    methods = sorted({r["method"] for r in rows if r["method"] not in REFERENCE_ROWS})
    if methods:
        _plot_quality_vs_sparsity(run, methods, rows)


def _plot_search_curve(run: RunDirectory, history: list[dict[str, float]]) -> None:
    episodes = sorted({int(r["episode"]) for r in history})
    reward = [np.mean([r["mean_reward"] for r in history if r["episode"] == e]) for e in episodes]
    size = [np.mean([r["mean_size"] for r in history if r["episode"] == e]) for e in episodes]
    with run.figure("search_curve.png", size=PLOT_SIZE) as (fig, axes):
        left = axes[0, 0]
        left.plot(episodes, reward, color="tab:blue", marker="o", label="mean reward")
        left.set_xlabel("episode")
        left.set_ylabel("mean reward", color="tab:blue")
        right = left.twinx()
        right.plot(episodes, size, color="tab:red", marker="s", label="mean size")
        right.set_ylabel("mean embedding size", color="tab:red")
        lambdas = [r["reward_lambda"] for r in history if "reward_lambda" in r]
        scheduled = bool(lambdas) and min(lambdas) != max(lambdas)
        fig.suptitle(
            "CIESS search: reward and size per episode"
            + (f" (λ {lambdas[0]:.2g} → {lambdas[-1]:.2g})" if scheduled else "")
        )


def _plot_quality_vs_sparsity(
    run: RunDirectory, methods: list[str], rows: list[dict[str, Any]]
) -> None:
    with run.figure("quality_vs_sparsity.png", size=PLOT_SIZE) as (_, axes):
        ax = axes[0, 0]
        for method in methods:
            points = sorted(
                (r["sparsity"], r.get("test_recall@20", np.nan))
                for r in rows
                if r["method"] == method
            )
            ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=method)
        references = [r for r in rows if r["method"] in REFERENCE_ROWS]
        for r, style in zip(references, ("--", ":"), strict=False):
            ax.axhline(r.get("test_recall@20", np.nan), color="grey", ls=style, label=r["method"])
        ax.set_xlabel("embedding sparsity")
        ax.set_ylabel("test Recall@20")
        ax.legend()


__all__ = ["ELEMENT_PRUNERS", "REFERENCE_ROWS", "epoch_logger", "markdown_table", "run_experiment"]
