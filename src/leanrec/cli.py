"""The ``leanrec`` command: one subcommand per job.

leanrec train --dataset ml-1m --model lightgcn --epochs 50 --n_layers 3
leanrec train --data ratings.csv --user-col userId --item-col movieId --rating-col rating
leanrec train --data seq.txt --format sequences --model sasrec --negatives uniform
leanrec datasets
leanrec recommend --model runs/ml-1m-lightgcn/model.pt --users 1 2 3 --k 10
leanrec predict --model runs/shared-embedding/model_autoassign_bce.pt --pairs pairs.csv
leanrec experiment embedding-size --dataset ml-1m --model lightgcn
leanrec experiment architecture --dataset ml-1m-ctr --seeds 0 1 2
leanrec experiment shared-embedding --dataset ml-1m-partial --methods all_unique autoassign
leanrec experiment adaptive --dataset ml-1m-partial --seeds 0 --lambda_grid "[0.0,0.02]"
leanrec train --dataset ml-1m-ctr --architecture runs/architecture-ml-1m-ctr/architecture_seed0.json
leanrec train --dataset ml-1m-ctr --model deepfm --epochs 5
torchrun --nproc_per_node 2 --rdzv-backend leanrec-loopback --rdzv-endpoint 127.0.0.1:29500 \
    $(which leanrec) train --dataset ml-1m
leanrec experiment embedding-size --dataset ml-1m --executor ray   # masks on RAY_ADDRESS
leanrec tune --dataset ml-100k --model mf --space space.yaml --trials 24
leanrec compress --model runs/embedding-size/ciess_c90.pt --out ciess_c90.safetensors
leanrec serve runs/ml-1m-lightgcn/model.pt --port 8000 --cold-start popular
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import functools
import json
import math
import re
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from leanrec.data.errors import DataError
from leanrec.data.own import DataFile, dataset_name
from leanrec.data.sequential import NegativeSampling
from leanrec.errors import TrainingError
from leanrec.options import Target, build_config, build_configs, check_literals, route_options

DEFAULT_SEEDS = (0, 1, 2)
"""``--seeds`` of the sketch and architecture experiments when none are given."""


def _parse_value(text: str) -> Any:
    """``"3"`` -> 3, ``"1e-3"`` -> 0.001, ``"[64,64]"`` -> [64, 64], ``"true"`` -> True."""
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _parse_options(extra: Sequence[str]) -> dict[str, Any]:
    """``["--lr", "0.01", "--n-layers", "2"]`` -> ``{"lr": 0.01, "n_layers": 2}``."""
    options: dict[str, Any] = {}
    i = 0
    while i < len(extra):
        token = extra[i]
        if not token.startswith("--"):
            raise SystemExit(f"leanrec: expected an --option, got {token!r}")
        key = token[2:].replace("-", "_")
        if "=" in key:
            key, value = key.split("=", 1)
            options[key] = _parse_value(value)
            i += 1
        elif i + 1 < len(extra) and not extra[i + 1].startswith("--"):
            options[key] = _parse_value(extra[i + 1])
            i += 2
        else:
            options[key] = True
            i += 1
    return options


OPTION_ALIASES = {
    "lr": "learning_rate",
    "batch": "batch_size",
    "reg": "l2",
    "epochs": "max_epochs",
}
"""Short names of config fields, valid wherever the field exists and the short name is no field
itself (``--epochs 30`` sets ``max_epochs`` of a trainer; ``--pretrain-epochs 5`` that of
``CIESSConfig.pretrain``; ``SketchConfig.epochs`` stays ``epochs``)."""


@dataclass
class CTRArchitectureTraining:
    """``leanrec train --architecture`` options on a CTR dataset that are not the trainer's."""

    embedding_dim: int = 16
    """Width of every field embedding of the rebuilt model."""


@dataclass
class RetrievalArchitectureTraining:
    """``leanrec train --architecture`` options on a sequence dataset besides the trainer's."""

    max_length: int = 50
    """Window length ``N`` of the next-item split."""
    negative_sampling: NegativeSampling = "uniform"
    """Negatives of the sampled evaluation (``"uniform"`` or ``"popularity"``)."""

    def __post_init__(self) -> None:
        check_literals(self)


def dataset_of(args: argparse.Namespace, default: str) -> str | DataFile:
    """The data a command runs on: ``--data FILE`` (read with the column flags), else
    ``--dataset NAME``, else ``default``.

    Raises:
        ValueError: both ``--data`` and ``--dataset`` given.
    """
    if args.data is None:
        return args.dataset or default
    if args.dataset is not None:
        raise ValueError("give --data FILE or --dataset NAME, not both")
    return DataFile(
        path=args.data,
        format=args.format,
        user_col=args.user_col,
        item_col=args.item_col,
        rating_col=args.rating_col,
        time_col=args.time_col,
        sep=args.sep,
        threshold=args.threshold,
        layout=args.layout,
        duplicates=args.duplicates,
    )


def is_sequence_data(dataset: str | DataFile) -> bool:
    """Whether ``dataset`` is time-ordered per-user sequences (next-item retrieval) rather than
    a CTR or plain ranking dataset: a sequence file or a table with a time column, or a
    registered dataset of kind ``"sequence"``."""
    if isinstance(dataset, DataFile):
        return dataset.kind == "sequence"
    from leanrec.data.registry import DATASETS

    info = DATASETS.get(dataset)
    return info is not None and info.kind == "sequence"


def build_train_config(args: argparse.Namespace, extra: Sequence[str]) -> Any:
    """The :class:`~leanrec.api.TrainConfig` for ``leanrec train`` (options go to the trainer
    if it has a field of that name, else to the model)."""
    from leanrec.api import TrainConfig
    from leanrec.models.registry import model_class
    from leanrec.train.bpr import TrainerConfig

    model_config_class = model_class(args.model).config_class
    trainer_options, model_options = route_options(
        _parse_options(extra), [TrainerConfig, model_config_class], OPTION_ALIASES
    )
    trainer = build_config(TrainerConfig, trainer_options, base=TrainerConfig(seed=args.seed))
    model_config = build_config(model_config_class, model_options)
    if args.resume and not args.run_dir:
        raise ValueError("--resume needs the --run-dir of the run to continue")
    dataset = dataset_of(args, "synthetic")
    run_dir = args.run_dir or _timestamped_run_dir(args, dataset)
    return TrainConfig(
        dataset=dataset,
        model=args.model,
        protocol=args.protocol,
        data_dir=args.data_dir,
        seed=args.seed,
        model_options={name: getattr(model_config, name) for name in model_options},
        trainer=trainer,
        run_dir=run_dir,
        resume=args.resume,
    )


@dataclass
class CTRTrainSettings:
    """What a CTR training (``leanrec train --model deepfm``) is started with: written to its
    run directory's ``config.json``, and what ``--resume`` must repeat."""

    dataset: str = "ml-1m-ctr"
    model: str = "deepfm"
    seed: int = 2024
    model_options: dict[str, Any] = field(default_factory=dict)
    trainer: Any = None


def _timestamped_run_dir(args: argparse.Namespace, dataset: str | DataFile) -> str:
    """``<runs>/<dataset or file stem>-<model>-<time>``."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return str(Path(args.runs) / f"{dataset_name(dataset)}-{args.model}-{stamp}")


def format_metrics(valid: Mapping[str, float], test: Mapping[str, float]) -> str:
    """A metrics table: rows metric@k (or a metric without cut-off, ``mrr``), columns
    validation and test."""

    def order(name: str) -> tuple[str, int]:
        metric, _, k = name.partition("@")
        return metric, int(k) if k.isdigit() else 0

    names = sorted(set(valid) | set(test), key=order)
    lines = [f"{'metric':<14}{'valid':>10}{'test':>10}"]
    for name in names:
        v = f"{valid[name]:.4f}" if name in valid else "-"
        t = f"{test[name]:.4f}" if name in test else "-"
        lines.append(f"{name:<14}{v:>10}{t:>10}")
    return "\n".join(lines)


def cmd_train(args: argparse.Namespace, extra: Sequence[str]) -> int:
    """``leanrec train``; under ``torchrun`` every rank runs it, data-parallel
    (:mod:`leanrec.train.distributed`), and rank 0 alone tests, writes and prints."""
    from leanrec.train.distributed import data_parallel, finish

    parallel = data_parallel()
    code = _train_command(args, extra, parallel is not None)
    finish()
    return code


def _train_command(args: argparse.Namespace, extra: Sequence[str], parallel: bool) -> int:
    from leanrec.api.next_item import NEXT_ITEM_MODELS

    sequential = args.model in NEXT_ITEM_MODELS or (
        args.architecture is not None and is_sequence_data(dataset_of(args, "ml-1m-ctr"))
    )
    if parallel and sequential:
        raise ValueError(
            "data-parallel training (torchrun) covers the BPR models (mf, neumf, ngcf, lightgcn) "
            "and the CTR models; train next-item models in one process"
        )
    if args.architecture is not None:
        return _train_architecture(args, extra)
    if args.model in NEXT_ITEM_MODELS:
        return _train_next_item(args, extra)
    if _is_ctr_model(args.model):
        return _train_ctr(args, extra)
    if args.negatives is not None:
        raise ValueError(
            f"--negatives sets the evaluation of next-item models ({', '.join(NEXT_ITEM_MODELS)}); "
            f"{args.model} is evaluated by full ranking"
        )
    from leanrec.api import train
    from leanrec.train.distributed import is_main_process

    config = build_train_config(args, extra)
    if is_main_process():
        print(
            f"training {config.model} on {dataset_name(config.dataset)} -> {config.run_dir}",
            file=sys.stderr,
        )

    run = train(config)
    if run.test_result is None:  # a rank other than 0 of a data-parallel run
        return 0
    result = run.train_result
    tested = run.test_result
    print(
        f"protocol {run.protocol.name}: {run.split.describe()}\n"
        f"test: {tested.n_users} users ranked ({tested.n_users_skipped} others have no test "
        "item left once their training items are excluded)\n"
        f"best epoch {result.best_epoch} of {result.epochs_run} "
        f"({result.seconds:.1f} s, stopped by {result.stop_reason})"
    )
    print(format_metrics(run.valid_metrics, run.test_metrics))
    print(f"run directory: {config.run_dir}")
    return 0


@dataclass
class NextItemWindow:
    """``leanrec train --model sasrec|gru4rec`` options that are neither the trainer's nor the
    encoder's."""

    max_length: int = 50
    """Window length ``N`` of the leave-one-out split (SASRec's ``max_length`` follows it)."""
    n_negatives: int = 100
    """Sampled candidates per evaluated user (uniform or popularity negatives)."""


def _train_next_item(args: argparse.Namespace, extra: Sequence[str]) -> int:
    """``leanrec train --model sasrec|gru4rec``: leave-one-out, sampled or full evaluation."""
    from leanrec.api.next_item import NextItemTrainConfig, train_next_item
    from leanrec.models.seq import SEQUENCE_ENCODERS
    from leanrec.train.sequential import SequentialTrainerConfig

    if args.protocol not in (None, "leave-one-out"):
        raise ValueError(
            f"{args.model} is trained and evaluated leave-one-out, not {args.protocol}"
        )
    if args.resume:
        raise ValueError(f"--resume is not available for {args.model}: train it again")
    encoder_config = SEQUENCE_ENCODERS[args.model][1]
    window, trainer_options, model_options = route_options(
        _parse_options(extra),
        [NextItemWindow, SequentialTrainerConfig, encoder_config],
        OPTION_ALIASES,
    )
    window_config = build_config(NextItemWindow, window)
    trainer = build_config(
        SequentialTrainerConfig, trainer_options, base=SequentialTrainerConfig(seed=args.seed)
    )
    model_config = build_config(encoder_config, model_options)
    dataset = dataset_of(args, "synthetic")
    run_dir = args.run_dir or _timestamped_run_dir(args, dataset)
    config = NextItemTrainConfig(
        dataset=dataset,
        model=args.model,
        negatives=args.negatives or "uniform",
        max_length=window_config.max_length,
        n_negatives=window_config.n_negatives,
        data_dir=args.data_dir,
        seed=args.seed,
        model_options={name: getattr(model_config, name) for name in model_options},
        trainer=trainer,
        run_dir=run_dir,
    )
    print(f"training {args.model} on {dataset_name(dataset)} -> {run_dir}", file=sys.stderr)
    run = train_next_item(config)
    result = run.train_result
    what = (
        "every item"
        if config.negatives == "all"
        else f"{config.n_negatives} {config.negatives} negatives"
    )
    print(
        f"protocol leave-one-out, target ranked against {what}: "
        f"{run.split.describe()}\n"
        f"best epoch {result.best_epoch} of {result.epochs_run} "
        f"({result.seconds:.1f} s, stopped by {result.stop_reason})"
    )
    print(format_metrics(run.valid_metrics, run.test_metrics))
    print(f"run directory: {run_dir}")
    return 0


def _train_architecture(args: argparse.Namespace, extra: Sequence[str]) -> int:
    """``leanrec train --architecture file.json``: rebuild a searched model and train it, a
    next-item model on sequence data, else a CTR model."""
    if is_sequence_data(dataset_of(args, "ml-1m-ctr")):
        if args.resume:
            raise ValueError(
                "--resume is not available for a next-item architecture: train it again"
            )
        return _train_retrieval_architecture(args, extra)
    import torch

    from leanrec.api.training import resume_state, start_training_dir
    from leanrec.data.registry import load_behavior_dataset
    from leanrec.models.ctr.ameir import AMEIRModel, Architecture
    from leanrec.runner.rundir import jsonable
    from leanrec.train.distributed import is_main_process
    from leanrec.train.pointwise import CTRTrainer, CTRTrainerConfig, evaluate_ctr

    if args.resume and not args.run_dir:
        raise ValueError("--resume needs the --run-dir of the run to continue")
    settings, config = build_configs(
        _parse_options(extra),
        [
            CTRArchitectureTraining,
            Target(CTRTrainerConfig, base=CTRTrainerConfig(seed=args.seed, num_threads=1)),
        ],
        OPTION_ALIASES,
    )
    architecture = Architecture.load(args.architecture)
    dataset = _ctr_dataset(dataset_of(args, "ml-1m-ctr"))
    run_dir = _architecture_run_dir(args, dataset)
    # the architecture itself, not its file's path, is what a resume must repeat
    started = CTRTrainSettings(
        dataset, "ameir", args.seed, {"architecture": jsonable(architecture),
                                      "embedding_dim": settings.embedding_dim}, config,
    )  # fmt: skip
    if args.resume:
        resume_state(run_dir)  # before any data is read
    split = load_behavior_dataset(dataset, args.data_dir)
    defaults = CTRTrainSettings(trainer=CTRTrainerConfig())
    state = start_training_dir(started, defaults, run_dir, args.resume)  # rank 0 writes it
    torch.manual_seed(args.seed)
    model = AMEIRModel.from_architecture(split.feature_map, architecture, settings.embedding_dim)
    trainer = CTRTrainer(config, checkpoint_path=state)
    result = trainer.fit(model, split.train, split.valid, resume=args.resume)
    if not is_main_process():  # rank 0 of a data-parallel run tests and writes
        return 0
    test = evaluate_ctr(model, split.test)
    model.save(run_dir / "model.pt")
    state.unlink(missing_ok=True)
    return _finish_architecture_run(
        run_dir,
        result,
        test,
        f"best epoch {result.best_epoch}: valid AUC {result.best_valid['auc']:.4f} "
        f"log loss {result.best_valid['logloss']:.4f}; test AUC {test['auc']:.4f} "
        f"log loss {test['logloss']:.4f}; {sum(model.parameter_counts().values()):,} parameters",
    )


def _is_ctr_model(name: str) -> bool:
    """Whether ``--model`` names a CTR model (``ameir`` needs ``--architecture``)."""
    from leanrec.models.ctr.registry import CTR_MODELS

    key = name.lower().replace("&", "_").replace("-", "_")
    return key in CTR_MODELS and key != "ameir"


def _train_ctr(args: argparse.Namespace, extra: Sequence[str]) -> int:
    """``leanrec train --dataset ml-1m-ctr --model deepfm``: a CTR model trained on click
    labels with early stopping on validation AUC, tested once (trainer options go to
    :class:`~leanrec.train.pointwise.CTRTrainerConfig`, the rest to the model's config)."""
    from leanrec.api.training import resume_state, start_training_dir
    from leanrec.data.registry import load_behavior_dataset
    from leanrec.models.ctr.registry import build_ctr_model, ctr_model_class
    from leanrec.train.distributed import is_main_process
    from leanrec.train.pointwise import CTRTrainer, CTRTrainerConfig, evaluate_ctr

    if args.resume and not args.run_dir:
        raise ValueError("--resume needs the --run-dir of the run to continue")
    trainer_options, model_options = route_options(
        _parse_options(extra),
        [CTRTrainerConfig, ctr_model_class(args.model).config_class],
        OPTION_ALIASES,
    )
    config = build_config(CTRTrainerConfig, trainer_options, base=CTRTrainerConfig(seed=args.seed))
    dataset = _ctr_dataset(dataset_of(args, "ml-1m-ctr"))
    run_dir = Path(args.run_dir or Path(args.runs) / f"{dataset}-{args.model.lower()}")
    if args.resume:
        resume_state(run_dir)  # before any data is read
    split = load_behavior_dataset(dataset, args.data_dir)
    model = build_ctr_model(args.model, split.feature_map, seed=args.seed, **model_options)
    if is_main_process():
        print(f"training {args.model} on {dataset}", file=sys.stderr)
    settings = CTRTrainSettings(dataset, args.model, args.seed, model_options, config)
    defaults = CTRTrainSettings(trainer=CTRTrainerConfig())
    state = start_training_dir(settings, defaults, run_dir, args.resume)  # rank 0 writes it
    trainer = CTRTrainer(config, checkpoint_path=state)
    result = trainer.fit(model, split.train, split.valid, resume=args.resume)
    if not is_main_process():  # rank 0 of a data-parallel run tests and writes
        return 0
    test = evaluate_ctr(model, split.test)
    model.save(run_dir / "model.pt")
    state.unlink(missing_ok=True)
    return _finish_architecture_run(
        run_dir,
        result,
        test,
        f"best epoch {result.best_epoch}: valid AUC {result.best_valid['auc']:.4f}; "
        f"test AUC {test['auc']:.4f} log loss {test['logloss']:.4f} "
        f"({result.samples_per_second:,.0f} samples/s)",
    )


def _ctr_dataset(dataset: str | DataFile) -> str:
    """The behaviour (CTR) dataset an architecture runs on when the data is no sequences
    (``ml-1m`` and ``synthetic`` stand for ``ml-1m-ctr``).

    Raises:
        DataError: a table of one's own without a time column (CTR search needs the user and
            item features of a behaviour dataset).
    """
    if isinstance(dataset, DataFile):
        raise DataError(
            "architecture search on a file of one's own is next-item retrieval over per-user "
            "sequences: give the table's time column (--time-col) or a sequence file "
            "(--format sequences); CTR search needs a behaviour dataset such as ml-1m-ctr",
            path=dataset.path,
        )
    return {"synthetic": "ml-1m-ctr", "ml-1m": "ml-1m-ctr"}.get(dataset, dataset)


def _train_retrieval_architecture(args: argparse.Namespace, extra: Sequence[str]) -> int:
    """``leanrec train --dataset beauty --architecture file.json``: a searched next-item model
    trained from scratch (leave-one-out, early stopping on validation NDCG@5)."""
    from leanrec.data.registry import load_dataset
    from leanrec.data.sequential import NextItemSplit
    from leanrec.models.seq.searched import build_searched_model, save_searched_model
    from leanrec.train.sequential import SequentialTrainer, SequentialTrainerConfig

    settings, config = build_configs(
        _parse_options(extra),
        [
            RetrievalArchitectureTraining,
            Target(
                SequentialTrainerConfig, base=SequentialTrainerConfig(seed=args.seed, num_threads=1)
            ),
        ],
        OPTION_ALIASES,
    )
    architecture = json.loads(Path(args.architecture).read_text())
    dataset = dataset_of(args, "beauty")
    data = load_dataset(dataset, args.data_dir)
    if isinstance(data, tuple):
        raise ValueError(f"{dataset_name(dataset)!r} is a train/test pair, not per-user sequences")
    split = NextItemSplit.from_interactions(
        data,
        settings.max_length,
        negative_sampling=settings.negative_sampling,
        seed=args.seed,
    )
    model = build_searched_model(split.n_items, architecture, settings.max_length, seed=args.seed)
    trainer = SequentialTrainer(model, split, config)
    result = trainer.fit()
    test = trainer.evaluate("test", "sampled").mean
    run_dir = _architecture_run_dir(args, dataset_name(dataset))
    run_dir.mkdir(parents=True, exist_ok=True)
    model.history_length = settings.max_length  # served histories are cut as in training
    save_searched_model(model, architecture, run_dir / "model.pt", data.item_vocab.raw_ids)
    return _finish_architecture_run(
        run_dir,
        result,
        test,
        f"best epoch {result.best_epoch}: valid NDCG@5 {result.best_valid['ndcg@5']:.4f}; test "
        f"HR@5 {test['hit@5']:.4f} NDCG@5 {test['ndcg@5']:.4f} "
        f"({settings.negative_sampling} negatives)",
    )


def _architecture_run_dir(args: argparse.Namespace, dataset: str) -> Path:
    """``--run-dir``, else ``<runs>/<dataset>-<architecture file's stem>``."""
    return Path(args.run_dir or Path(args.runs) / f"{dataset}-{Path(args.architecture).stem}")


def _finish_architecture_run(
    run_dir: Path, result: Any, test: Mapping[str, float], summary: str
) -> int:
    """Write ``metrics.json`` (``result``'s best validation metrics and epoch, the ``test``
    metrics) into ``run_dir``, then print ``summary`` and where the run is."""
    from leanrec.runner.rundir import atomic_write_json

    metrics = {"valid": result.best_valid, "test": test, "best_epoch": result.best_epoch}
    atomic_write_json(run_dir / "metrics.json", metrics)
    print(summary)
    print(f"run directory: {run_dir}")
    return 0


def cmd_datasets(args: argparse.Namespace, extra: Sequence[str]) -> int:
    from leanrec.data.registry import BEHAVIOR_DATASETS, dataset_status, resolve_data_dir

    root = resolve_data_dir(args.data_dir)
    rows = dataset_status(args.data_dir)
    present = {str(row["name"]): bool(row["present"]) for row in rows}
    built = [
        {"name": info.name, "source": info.source, "present": present.get(info.source, False)}
        for info in BEHAVIOR_DATASETS.values()
    ]
    if args.json:
        answer = {
            "data_dir": str(root),
            "data_dir_exists": root.is_dir(),
            "datasets": rows,
            "built_datasets": built,
        }
        print(json.dumps(answer, indent=2, default=str))
        return 0
    print(f"data directory: {root}" + ("" if root.is_dir() else " (does not exist)"))
    print(f"{'name':<16}{'present':<9}{'folder':<30}missing")
    print(f"{'synthetic':<16}{'yes':<9}{'(generated)':<30}")
    for row in rows:
        absent = row.get("missing")
        missing = ", ".join(map(str, absent)) if isinstance(absent, list) else ""
        yes = "yes" if row["present"] else "no"
        print(f"{row['name']:<16}{yes:<9}{Path(str(row['folder'])).name:<30}{missing}")
    for entry in built:
        yes = "yes" if entry["present"] else "no"
        print(f"{entry['name']:<16}{yes:<9}{'(built from ' + str(entry['source']) + ')':<30}")
    return 0


def cmd_recommend(args: argparse.Namespace, extra: Sequence[str]) -> int:
    from leanrec.models import Recommender, load_model

    loaded = load_model(args.model)
    if args.history is not None:
        return _recommend_next(loaded, args)
    if not isinstance(loaded.model, Recommender):
        hint = {
            "sequential": "a next-item model continues a history: give --history ITEM ...",
            "stream": "score its events with leanrec predict",
            "ctr": "serve it with leanrec serve (POST /score)",
        }.get(loaded.family, "")
        raise DataError(f"a {loaded.family} model ranks no users; {hint}", path=args.model)
    model, user_vocab, item_vocab = loaded.model, loaded.user_vocab, loaded.item_vocab
    users: list[Any] = list(args.users)
    if user_vocab is not None and not args.indices:
        index = user_vocab.to_index(raw_ids_like(users, user_vocab))
    else:
        index = np.asarray([_user_index(u) for u in users], dtype=np.int64)
    n_users = _n_users(model)
    if n_users is not None and len(index) and (index.min() < 0 or index.max() >= n_users):
        bad = int(index[(index < 0) | (index >= n_users)][0])
        raise ValueError(f"user index {bad} out of range: the model has users 0..{n_users - 1}")
    if args.k < 1:
        raise ValueError(f"--k must be at least 1, got {args.k}")
    n_items = getattr(model, "n_items", None)
    if isinstance(n_items, int) and args.k > n_items:
        raise ValueError(f"--k {args.k} exceeds the model's {n_items} items")
    items, scores = model.recommend(index, args.k)
    seen = (model.seen_indptr[index + 1] - model.seen_indptr[index]).tolist()
    out = []
    for user, n_seen, row, row_scores in zip(users, seen, items.tolist(), scores.tolist()):
        unseen = model.n_items - n_seen  # seen items rank last: a list stops before them
        row, row_scores = row[:unseen], row_scores[:unseen]
        _check_finite_scores(row_scores, f"user {user}", args.model)
        ids = row if item_vocab is None or args.indices else item_vocab.to_raw(row).tolist()
        out.append({"user": user, "items": ids, "scores": [round(s, 6) for s in row_scores]})
    print(json.dumps(out, indent=None if args.compact else 2, default=str))
    return 0


def _check_finite_scores(scores: Sequence[float], whose: str, path: str) -> None:
    """DataError when a score to print is NaN or infinite (not JSON; a diverged model)."""
    if not all(math.isfinite(s) for s in scores):
        raise DataError(
            f"the model scores NaN or infinity for {whose}: its weights hold NaN or infinite "
            "values (a diverged training)",
            path=path,
        )


def _recommend_next(loaded: Any, args: argparse.Namespace) -> int:
    """``leanrec recommend --history``: the top-k next items of a next-item model after the
    given items (raw IDs, oldest first; item IDs ``1..I`` with ``--indices``), the history's
    own items left out."""
    from leanrec.models.seq import NextItemModel

    model = loaded.model
    if not isinstance(model, NextItemModel):
        raise DataError(
            f"--history continues a next-item model's history; this is a {loaded.family} model "
            "(rank items for known users with --users)",
            path=args.model,
        )
    vocab = loaded.item_vocab
    if vocab is not None and not args.indices:
        history = (vocab.to_index(raw_ids_like(args.history, vocab)) + 1).tolist()
    else:
        history = [_item_id(text) for text in args.history]
    if not 1 <= args.k <= model.n_items:
        raise ValueError(f"--k must be in [1, {model.n_items}], got {args.k}")
    items, scores = model.recommend([history], args.k)
    kept = [(i, s) for i, s in zip(items[0].tolist(), scores[0].tolist()) if s != -math.inf]
    _check_finite_scores([s for _, s in kept], "this history", args.model)
    ids = [i for i, _ in kept]
    if vocab is not None and not args.indices:
        ids = vocab.to_raw([i - 1 for i in ids]).tolist()
    answer = {"history": list(args.history), "items": ids, "scores": [round(s, 6) for _, s in kept]}
    print(json.dumps([answer], indent=None if args.compact else 2, default=str))
    return 0


def _item_id(text: str) -> int:
    if not _is_int(text):
        raise ValueError(f"item ID {text!r} is not an integer")
    return int(text)


def raw_ids_like(texts: Sequence[str], vocab: Any) -> list[Any]:
    """Command-line IDs as the vocabulary holds them: ints for an integer vocabulary, else the
    text as given (or the number it reads as, when only that is known).

    Raises:
        ValueError: a non-integer ID for an integer vocabulary (the ID named).
    """
    if vocab.raw_ids.dtype.kind in "iu":
        out: list[Any] = []
        for text in texts:
            if not _is_int(text):
                examples = ", ".join(str(v) for v in vocab.raw_ids[:3].tolist())
                raise ValueError(
                    f"{vocab.name} ID {text!r} is not an integer; the model's {vocab.name} IDs "
                    f"are integers (such as {examples})"
                )
            out.append(int(text))
        return out
    return [text if text in vocab else _parse_value(text) for text in texts]


def _user_index(text: str) -> int:
    if not _is_int(text):
        raise ValueError(f"user index {text!r} is not an integer")
    return int(text)


def _n_users(model: Any) -> int | None:
    value = getattr(model, "n_users", None)
    return int(value) if isinstance(value, int) else None


def cmd_predict(args: argparse.Namespace, extra: Sequence[str]) -> int:
    from leanrec.models import load_model

    loaded = load_model(args.model)
    if loaded.family == "ctr":
        return _predict_ctr(loaded, args)
    if loaded.stream is None:
        raise DataError(
            f"leanrec predict scores stream and CTR models; this is a {loaded.family} model "
            "(rank items with leanrec recommend)",
            path=args.model,
        )
    if args.pairs is None:
        raise DataError("a stream model scores ID pairs: give --pairs FILE.csv", path=args.model)
    served = loaded.stream
    pairs = read_pairs(args.pairs, served.model.stream_fields, served.raw_ids)
    known = {f: served.is_known(f, ids) for f, ids in pairs.items()}
    predictions = served.predict(pairs)
    what = "probability" if served.objective == "bce" else "rating"
    out = []
    for i, value in enumerate(predictions.tolist()):
        event: dict[str, Any] = {f: ids[i] for f, ids in pairs.items()}
        event[what] = round(value, 6)
        event["cold"] = [f for f in pairs if not known[f][i]]
        out.append(event)
    print(json.dumps(out, indent=None if args.compact else 2, default=str))
    return 0


def _predict_ctr(loaded: Any, args: argparse.Namespace) -> int:
    """``leanrec predict --events FILE.jsonl``: a CTR model's click probability of each event,
    one JSON object a line with the model's input fields (indices, as its feature map numbers
    them; ``history`` and the tag field optional), as ``POST /score`` takes them; scored in
    chunks of :data:`PREDICT_CHUNK` events, each answer naming its line."""
    from leanrec.serve.engine import CTREngine, RequestError

    if args.events is None:
        raise DataError("a CTR model scores events: give --events FILE.jsonl", path=args.model)
    lines, events = read_events(args.events)
    engine = CTREngine(loaded, Path(args.model))
    probabilities: list[float] = []
    for start in range(0, len(events), PREDICT_CHUNK):
        try:
            probabilities += engine.score(events[start : start + PREDICT_CHUNK])["scores"]
        except RequestError as error:
            found = re.match(r"events\[(\d+)\]\.?", error.field)
            if found is None:
                raise DataError(error.message, path=args.events) from None
            line = lines[start + int(found.group(1))]
            message = error.message.replace(found.group(0), "", 1)
            raise DataError(message, path=args.events, line=line) from None
    out = [
        {"line": line, "probability": round(p, 6)}
        for line, p in zip(lines, probabilities, strict=True)
    ]
    print(json.dumps(out, indent=None if args.compact else 2))
    return 0


PREDICT_CHUNK = 4096
"""Events scored in one batch by ``leanrec predict --events``."""


def read_events(path: str | Path) -> tuple[list[int], list[dict[str, Any]]]:
    """JSON objects, one a line (blank lines skipped; UTF-8, a byte-order mark allowed).

    Returns:
        ``(lines, events)``: each event's 1-based line number in the file, and the events.

    Raises:
        DataError: a missing file, a line that is no JSON object (its number named), no event.
    """
    from leanrec.data.errors import require_file

    lines: list[int] = []
    events: list[dict[str, Any]] = []
    with require_file(path, "events file").open(encoding="utf-8-sig") as handle:
        for number, text in enumerate(handle, start=1):
            if not text.strip():
                continue
            try:
                event = json.loads(text)
            except json.JSONDecodeError as error:
                raise DataError(f"not a JSON object ({error.msg})", path, number) from None
            if not isinstance(event, dict):
                raise DataError("not a JSON object", path, number)
            lines.append(number)
            events.append(event)
    if not events:
        raise DataError("no event in the file", path)
    return lines, events


def read_pairs(
    path: str | Path, fields: Sequence[str], known: Mapping[str, Sequence[Any]]
) -> dict[str, list[Any]]:
    """Raw IDs per field from a CSV file whose header names the model's ID fields (``user``,
    ``item`` and any other), one event per line.

    A value becomes an int when the field's known IDs are ints and it reads as one (MovieLens
    IDs), else it stays text; an ID the model never saw is served cold (level 1 of a
    hierarchy).

    Raises:
        DataError: a missing file, a header without a field, or a line with another number of
            values than the header (file and line named).
    """
    import csv

    from leanrec.data.loaders.tabular import check_columns_named_once, raise_on_bad_encoding

    path = Path(path)
    if not path.is_file():
        raise DataError("pairs file not found (missing file)", path=path)
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            lines = list(csv.reader(handle))
    except UnicodeDecodeError:
        raise_on_bad_encoding(path)
        raise
    if not lines:
        raise DataError(f"empty pairs file: expected a header naming {list(fields)}", path=path)
    header = [name.strip() for name in lines[0]]
    check_columns_named_once(header, fields, path)
    missing = [f for f in fields if f not in header]
    if missing:
        raise DataError(
            f"the header names no column {missing}; the model's ID fields are {list(fields)}",
            path=path,
            line=1,
        )
    integer = {f: bool(known[f]) and isinstance(known[f][0], int) for f in fields}
    pairs: dict[str, list[Any]] = {f: [] for f in fields}
    for number, values in enumerate(lines[1:], start=2):
        if not values:
            continue
        if len(values) != len(header):
            raise DataError(
                f"expected {len(header)} values ({', '.join(header)}), found {len(values)}",
                path=path,
                line=number,
            )
        for f in fields:
            text = values[header.index(f)].strip()
            pairs[f].append(int(text) if integer[f] and _is_int(text) else text)
    if not pairs[fields[0]]:
        raise DataError("no events to score: the pairs file has a header only", path=path)
    return pairs


def _is_int(text: str) -> bool:
    return text.lstrip("-").isdigit()


def cmd_experiment(args: argparse.Namespace, extra: Sequence[str]) -> int:
    extra = [*extra, *_executor_options(args)]
    if args.out is not None and Path(args.out).exists() and not Path(args.out).is_dir():
        raise ValueError(f"--out {args.out} is a file; give a directory for the run")
    if args.capability == "sketch":
        return _sketch_experiment(args, extra)
    if args.capability == "architecture":
        return _architecture_experiment(args, extra)
    if args.capability == "shared-embedding":
        return _shared_embedding_experiment(args, extra)
    if args.capability == "adaptive":
        return _adaptive_experiment(args, extra)
    if args.capability != "embedding-size":
        raise ValueError(f"unknown experiment {args.capability!r}; known: {', '.join(EXPERIMENTS)}")
    from leanrec.search.embedding_size import CIESSConfig, EmbeddingSizeExperiment, run_experiment
    from leanrec.search.embedding_size.config import apply_preset

    if args.seeds is not None:
        raise ValueError("embedding-size runs one search: give --seed N, not --seeds")
    dataset = dataset_of(args, "ml-1m")
    out = args.out or f"runs/embedding-size-{dataset_name(dataset)}-{args.model}"
    experiment = EmbeddingSizeExperiment(
        dataset=dataset,
        model=args.model,
        data_dir=args.data_dir,
        out_dir=out,
        methods=tuple(args.methods)
        if args.methods
        else ("ciess", "su", "sr", "popularity", "magprune", "pep", "esapn"),
        warm_start_init=args.warm_start_init,
    )
    if args.preset is not None:  # the preset's fields first; options given set over them
        experiment = apply_preset(experiment, args.preset, tuple(args.without or ()))
    elif args.without:
        raise ValueError("--without turns additions of a preset off: give --preset too")
    if args.pruning_base is not None:
        experiment = dataclasses.replace(experiment, pruning_base=args.pruning_base)
    # --split_seed 7 and the PEP baseline's --pep-max_epochs 10 set the experiment; the rest
    # the search, its nested configs included: --pretrain-epochs 50, --td3-hidden 128
    experiment, search = build_configs(
        _parse_options(extra),
        [
            Target(EmbeddingSizeExperiment, experiment, only=("split_seed", "pep")),
            Target(CIESSConfig, experiment.search),
        ],
        OPTION_ALIASES,
    )
    if args.no_random_walk:
        search = dataclasses.replace(search, random_walk=False)
    exp = dataclasses.replace(experiment, search=search)
    result = _run_table(run_experiment, exp)
    return 0 if result.rows else 1


EXPERIMENTS = (
    "embedding-size", "sketch", "architecture", "shared-embedding", "adaptive",
)  # fmt: skip
"""The experiments of ``leanrec experiment``; each sends its independent jobs through an executor
(``--executor``)."""


def _executor_options(args: argparse.Namespace) -> list[str]:
    """``--executor`` and ``--executor-cpus-per-job`` as options of the search config that
    takes them (every experiment of :data:`EXPERIMENTS` has one); the sketch experiment
    reads them from ``args`` itself."""
    if args.executor is None and args.executor_cpus_per_job is None:
        return []
    if args.capability == "sketch":
        return []
    options = [] if args.executor is None else ["--executor", args.executor]
    if args.executor_cpus_per_job is not None:
        options += ["--executor_cpus_per_job", str(args.executor_cpus_per_job)]
    return options


def _sketch_experiment(args: argparse.Namespace, extra: Sequence[str]) -> int:
    from leanrec.search.sketch import METHODS, SketchConfig, SketchExperiment
    from leanrec.search.sketch.config import apply_preset
    from leanrec.search.sketch.experiment import run_experiment

    # --preset sets its fields first; an explicit --option is set over it
    base = None
    if args.preset is not None:
        base = apply_preset(SketchConfig(), args.preset, tuple(args.without or ()))
    elif args.without:
        raise ValueError("--without turns additions of a preset off: give --preset too")
    config = build_config(SketchConfig, _parse_options(extra), base=base, aliases=OPTION_ALIASES)
    methods = tuple(args.methods) if args.methods else METHODS.names()
    dataset = dataset_of(args, "ml-1m")
    out = args.out or f"runs/sketch-{dataset_name(dataset)}"
    exp = SketchExperiment(
        dataset=dataset,
        data_dir=args.data_dir,
        out_dir=out,
        methods=methods,
        sketch_sizes=tuple(args.sketch_sizes),
        update_periods=tuple(args.update_periods),
        seeds=tuple(args.seeds or DEFAULT_SEEDS),
        config=config,
        executor=args.executor or "serial",
        executor_cpus_per_job=args.executor_cpus_per_job or 1.0,
    )
    result = _run_table(run_experiment, exp)
    return 0 if result.rows else 1


def _shared_embedding_experiment(args: argparse.Namespace, extra: Sequence[str]) -> int:
    from leanrec.search.shared_embedding import METHODS, SharedEmbeddingExperiment, run_experiment

    # --chunk_size 500 --curves true --max_events 20000 --order file set the experiment;
    # --agent_levels 5 the agent, --trainer_batch_size 256 the base model's training
    return _stream_experiment(
        args, extra, SharedEmbeddingExperiment, run_experiment, "shared-embedding",
        METHODS.names(), objectives=tuple(args.objectives or ("bce",)),
    )  # fmt: skip


def _adaptive_experiment(args: argparse.Namespace, extra: Sequence[str]) -> int:
    from leanrec.search.adaptive import METHODS, AdaptiveExperiment, run_experiment

    # --sessions 20 --session_by week --lambda_grid [0,0.02] set the experiment;
    # --controller_protection ewc the controller, --trainer_batch_size 256 the base model
    return _stream_experiment(
        args, extra, AdaptiveExperiment, run_experiment, "adaptive", METHODS.names()
    )


def _stream_experiment(
    args: argparse.Namespace,
    extra: Sequence[str],
    experiment_class: type[Any],
    run_experiment: Callable[..., Any],
    prefix: str,
    all_methods: tuple[str, ...],
    **fields: Any,
) -> int:
    """A stream experiment (shared-embedding, adaptive) from the common flags, ``fields`` and
    the options in ``extra`` (its own fields and those of its nested configs); run it."""
    model = "deepfm" if args.model == "lightgcn" else args.model  # lightgcn: the flag's default
    dataset = dataset_of(args, "ml-1m")
    experiment = experiment_class(
        dataset=dataset,
        data_dir=args.data_dir,
        out_dir=args.out or f"runs/{prefix}-{dataset_name(dataset)}-{model}",
        model=model,
        methods=tuple(args.methods) if args.methods else all_methods,
        seeds=tuple(args.seeds or DEFAULT_SEEDS),
        **fields,
    )
    experiment = build_config(
        experiment_class, _parse_options(extra), base=experiment, aliases=OPTION_ALIASES
    )
    result = _run_table(run_experiment, experiment)
    return 0 if result.rows else 1


def _architecture_experiment(args: argparse.Namespace, extra: Sequence[str]) -> int:
    from leanrec.search.architecture import config

    dataset = dataset_of(args, "ml-1m")
    if is_sequence_data(dataset):
        return _architecture_table(
            args,
            extra,
            config.RetrievalExperiment,
            config.RetrievalSearchConfig,
            dataset,
            (config.RETRIEVAL_BASELINES, config.RETRIEVAL_METHODS),
            ("baseline_epochs", "baseline_seconds", "negative_sampling", "max_length"),
        )
    return _architecture_table(
        args,
        extra,
        config.ArchitectureExperiment,
        config.ArchitectureSearchConfig,
        _ctr_dataset(dataset),
        (config.HAND_DESIGNED, config.NAS_METHODS),
        ("baseline_epochs", "random_budget"),
    )


def _architecture_table(
    args: argparse.Namespace,
    extra: Sequence[str],
    experiment_class: type[Any],
    search_class: type[Any],
    dataset: str | DataFile,
    default_methods: tuple[tuple[str, ...], tuple[str, ...]],
    experiment_options: tuple[str, ...],
) -> int:
    """One AMEIR table (CTR: Table 1; next-item retrieval: Table 2): the experiment from the
    flags, the options routed to its ``experiment_options`` then to the search config.

    Args:
        default_methods: ``(baselines, searched methods)`` run when no flag names them.
    """
    from leanrec.search.architecture.config import apply_preset
    from leanrec.search.architecture.experiment import run_experiment

    baselines, methods = default_methods
    experiment = experiment_class(
        dataset=dataset,
        data_dir=args.data_dir,
        out_dir=args.out or f"runs/architecture-{dataset_name(dataset)}",
        baselines=tuple(args.baselines) if args.baselines is not None else baselines,
        methods=tuple(args.methods) if args.methods else methods,
        seeds=tuple(args.seeds or DEFAULT_SEEDS),
    )
    # --preset sets its fields first; an explicit --option is set over it
    base = search_class()
    if args.preset is not None:
        base = apply_preset(base, args.preset, tuple(args.without or ()))
    elif args.without:
        raise ValueError("--without turns additions of a preset off: give --preset too")
    experiment, search = build_configs(
        _parse_options(extra),
        [Target(experiment_class, experiment, only=experiment_options), Target(search_class, base)],
        OPTION_ALIASES,
    )
    exp = dataclasses.replace(experiment, config=search)
    result = _run_table(run_experiment, exp)
    return 0 if result.summary["methods"] else 1


def _run_table(run_experiment: Callable[..., Any], experiment: Any) -> Any:
    """``run_experiment(experiment)`` with its log on stdout, then its table and where its
    results are; returns its result."""
    result = run_experiment(experiment, log=lambda message: print(message, flush=True))
    print(result.table())
    print(f"results: {result.run_dir.path / 'results.json'}")
    return result


def cmd_tune(args: argparse.Namespace, extra: Sequence[str]) -> int:
    """``leanrec tune``: Ray Tune over the options of a space file; writes the table of trials
    and the best config (with the ``leanrec train`` arguments that train it)."""
    try:
        import ray  # noqa: F401
    except ImportError:
        print(
            "leanrec tune: error: needs the ray extra: pip install 'leanrec[ray]'",
            file=sys.stderr,
        )
        return 2
    from leanrec.tune import TuneSettings, tune_model

    dataset = dataset_of(args, "ml-100k")
    settings = TuneSettings(
        dataset=dataset,
        model=args.model,
        space=args.space,
        out_dir=args.out or f"runs/tune-{dataset_name(dataset)}-{args.model}",
        protocol=args.protocol,
        data_dir=args.data_dir,
        seed=args.seed,
        trials=args.trials,
        max_epochs=args.max_epochs,
        eval_every=args.eval_every,
        grace_validations=args.grace,
        reduction_factor=args.reduction_factor,
        time_budget_s=args.time_budget,
        cpus_per_trial=args.cpus_per_trial,
        fixed=_parse_options(extra),
        resume=args.resume,
    )
    result = tune_model(settings, log=lambda message: print(message, file=sys.stderr, flush=True))
    print(result.table())
    print(f"best config: {result.out_dir / 'best_config.json'}")
    print(f"train it: leanrec train {' '.join(result.best['train_args'])}")
    return 0


def cmd_compress(args: argparse.Namespace, extra: Sequence[str]) -> int:
    from leanrec.api import load_model
    from leanrec.models.compress import compress, entity_sparsity, save_compressed

    model, user_vocab, item_vocab = load_model(args.model)
    out = Path(args.out or Path(args.model).with_suffix(".safetensors"))
    save_compressed(
        model,
        out,
        None if user_vocab is None else user_vocab.raw_ids,
        None if item_vocab is None else item_vocab.raw_ids,
    )
    packed = compress(model)
    dense = sum(t.num_embeddings * t.embedding_dim * 4 for t in model.embedding_tables().values())
    report = {
        "out": str(out),
        "sparsity": round(entity_sparsity(model), 6),
        "logical_parameters": packed.embedding_parameters(),
        "dense_table_bytes": dense,
        "packed_table_bytes": packed.embedding_bytes(),
        "packed_ratio": round(packed.embedding_bytes() / dense, 6),
        "file_bytes": out.stat().st_size,
    }
    print(json.dumps(report, indent=2))
    return 0


def cmd_serve(args: argparse.Namespace, extra: Sequence[str]) -> int:
    if not 1 <= args.port <= 65535:
        raise ValueError(f"--port must be in 1..65535, got {args.port}")
    try:
        from leanrec.serve.app import ServeSettings, run
    except ImportError as error:
        print(
            f"leanrec serve: error: needs the serve extra ({error}): pip install 'leanrec[serve]'",
            file=sys.stderr,
        )
        return 2
    settings = ServeSettings(
        max_batch=args.max_batch,
        max_wait_ms=args.max_wait_ms,
        threads=args.threads,
        padded_vectors=args.padded_vectors,
    )
    run(args.model, args.host, args.port, args.cold_start, settings)
    return 0


def add_data_arguments(parser: argparse.ArgumentParser, default_dataset: str) -> None:
    """``--dataset NAME`` or ``--data FILE`` with the flags that say how to read the file."""
    parser.add_argument(
        "--dataset",
        default=None,
        help=f"a registered dataset (leanrec datasets); default {default_dataset}",
    )
    group = parser.add_argument_group("your own data (instead of --dataset)")
    group.add_argument(
        "--data",
        default=None,
        metavar="FILE",
        help="an interaction file: a table (.csv, .tsv, .parquet, with a header) or, with "
        "--format sequences, 'user item' pairs in time order or one user per line; outputs "
        "are named after the file",
    )
    group.add_argument("--format", choices=["table", "sequences"], default="table")
    group.add_argument("--user-col", default="user", help="table column of the user ID")
    group.add_argument("--item-col", default="item", help="table column of the item ID")
    group.add_argument("--rating-col", default=None, help="table column of the rating")
    group.add_argument(
        "--time-col", default=None, help="table column of the time (number or date/time text)"
    )
    group.add_argument(
        "--sep", default=None, help="text separator (default: by suffix, else sniffed)"
    )
    group.add_argument(
        "--threshold",
        type=float,
        default=None,
        help="keep rows with rating >= this as positives (needs --rating-col)",
    )
    group.add_argument(
        "--layout",
        choices=["auto", "pairs", "lines"],
        default="auto",
        help="sequence files: 'user item' pairs, one user per line, or auto",
    )
    group.add_argument(
        "--duplicates",
        choices=["keep", "first", "last"],
        default="keep",
        help="rows repeating a (user, item) pair: keep them all (a warning names how many), "
        "or keep the first or last (by time when there is --time-col)",
    )


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="leanrec", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    # no abbreviations: unknown --options are forwarded to configs, and an abbreviation would
    # silently take one of them (``--seed 5`` read as ``--seeds 5``)
    add_command = functools.partial(sub.add_parser, allow_abbrev=False)

    p = add_command(
        "train",
        help="train a base recommender; extra --option value pairs go to the trainer or model "
        "(e.g. --embedding-optimizer dense_adam|sparse_adam|lazy_adam|rowwise_adagrad)",
    )
    add_data_arguments(p, "synthetic")
    p.add_argument(
        "--model",
        default="lightgcn",
        help="mf, neumf, ngcf, lightgcn (full ranking), the next-item models sasrec, gru4rec "
        "(leave-one-out), or a CTR model on a CTR dataset: dnn, wide_deep, deepfm, xdeepfm, din "
        "(AUC)",
    )
    p.add_argument(
        "--protocol",
        default=None,
        help="evaluation protocol (default: the dataset's; a file of your own: leave-one-out "
        "when it is time-ordered, else default)",
    )
    p.add_argument(
        "--negatives",
        choices=["uniform", "popularity", "all"],
        default=None,
        help="sasrec/gru4rec: rank the target against 100 unseen items drawn uniformly "
        "(default), by popularity, or against all items",
    )
    p.add_argument("--data-dir", default=None)
    p.add_argument("--seed", type=int, default=2024)
    p.add_argument("--runs", default="runs", help="parent of the run directory")
    p.add_argument("--run-dir", default=None, help="exact run directory")
    p.add_argument(
        "--resume", action="store_true", help="continue a killed run in --run-dir from its state"
    )
    p.add_argument(
        "--architecture",
        default=None,
        help="a searched architecture (JSON of leanrec experiment architecture): rebuild and "
        "train it, for next-item retrieval on sequence data, else on a CTR dataset (default "
        "ml-1m-ctr)",
    )
    p.set_defaults(func=cmd_train, allow_extra=True)

    p = add_command("datasets", help="list known datasets and whether their files are present")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_datasets, allow_extra=False)

    p = add_command(
        "recommend",
        help="top-k items for users from a saved model, or the next items after a history",
    )
    p.add_argument(
        "--model", required=True, help="model.pt of leanrec train, or a .safetensors of compress"
    )
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--users", nargs="+", help="users of a ranking model (raw IDs)")
    who.add_argument(
        "--history",
        nargs="+",
        help="a next-item model's input: items (raw IDs), oldest first",
    )
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--indices", action="store_true", help="users/items as indices, not raw IDs")
    p.add_argument("--compact", action="store_true")
    p.set_defaults(func=cmd_recommend, allow_extra=False)

    p = add_command(
        "predict",
        help="score events with a saved stream model (ID pairs, e.g. AutoAssign+'s; IDs it "
        "never saw are served cold) or CTR model (its input fields, e.g. AMEIR's)",
    )
    p.add_argument(
        "--model", required=True, help="a stream model file (model_autoassign_*.pt) or a CTR one"
    )
    events = p.add_mutually_exclusive_group(required=True)
    events.add_argument(
        "--pairs",
        help="stream models: CSV whose header names the model's ID fields (user,item), one "
        "event per line",
    )
    events.add_argument(
        "--events",
        help="CTR models: JSON lines, one event each with the model's input fields (indices)",
    )
    p.add_argument("--compact", action="store_true")
    p.set_defaults(func=cmd_predict, allow_extra=False)

    p = add_command(
        "experiment",
        help="run a capability's paper-style experiment; extra --option value pairs go to "
        "its search config",
    )
    p.add_argument(
        "capability",
        choices=EXPERIMENTS,
    )
    add_data_arguments(p, "ml-1m")
    p.add_argument("--model", default="lightgcn")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--out", default=None, help="output directory (resumed when it exists)")
    p.add_argument(
        "--methods",
        nargs="+",
        default=None,
        help="embedding-size default: ciess su sr popularity magprune pep esapn; "
        "sketch default: random hardest influence recent dips1 dips; "
        "architecture default: ameir one_shot random; shared-embedding default: all_unique "
        "threshold hashing qr lfu lru threshold_hierarchy autoassign; adaptive default: "
        "fixed_small fixed_medium fixed_large always_grow retrain_medium loss_threshold adaptive "
        "adaptive_a2c adaptive_leanrec adaptive_leanrec_freeze adaptive_leanrec_ewc",
    )
    p.add_argument(
        "--baselines",
        nargs="*",
        default=None,
        help="architecture: hand-designed baselines (default dnn wide_deep deepfm xdeepfm din)",
    )
    p.add_argument("--no-random-walk", action="store_true", help="ablation: no random walk")
    p.add_argument(
        "--warm-start-init",
        default=None,
        help="embedding-size: pretrain further from this full-size checkpoint (an earlier "
        "run's warm_start.pt)",
    )
    p.add_argument(
        "--pruning-base",
        choices=["warm_start", "ordinary"],
        default=None,
        help="embedding-size: the full-size model MagPrune and PEP prune: the prefix-dropout "
        "warm start (default), or an ordinary model trained without prefix dropout "
        "(ordinary.pt)",
    )
    p.add_argument(
        "--preset",
        choices=["paper", "leanrec"],
        default=None,
        help="embedding-size, architecture, sketch: the policy as its paper specifies it "
        "(paper) or leanrec's variant (leanrec); other options set over it. Default: the "
        "fields' defaults",
    )
    p.add_argument(
        "--without",
        nargs="+",
        default=None,
        metavar="ADDITION",
        help="with --preset: turn these of leanrec's additions off; embedding-size: warm_start "
        "item_hits rising_lambda screen rescaling both_projections retrain_from_warm_start "
        "validate_initial pruning_base; architecture (CTR): fm_term carried_embeddings "
        "keep_best largest_child keep_inherited mean_readout constant_step short_evolution; "
        "architecture (next-item): positions final_norm input_dropout; "
        "sketch: influence_start recency_prior",
    )
    p.add_argument(
        "--objectives",
        nargs="+",
        choices=["bce", "mse"],
        default=None,
        help="shared-embedding: bce (label: AUC, log loss, accuracy) and/or mse (rating); "
        "default bce",
    )
    p.add_argument("--sketch-sizes", nargs="+", type=int, default=[2, 4, 8], help="sketch: K")
    p.add_argument("--update-periods", nargs="+", type=int, default=[1, 4], help="sketch: τ")
    p.add_argument(
        "--seeds",
        nargs="+",
        type=int,
        default=None,
        help="sketch: user splits; architecture: search seeds (default: 0 1 2); "
        "embedding-size takes one --seed",
    )
    p.add_argument(
        "--executor",
        default=None,
        metavar="{serial,ray}",
        help="embedding-size, architecture, sketch: run the search's independent jobs "
        "(masks, children, cells) in this process (serial, the default) or as Ray tasks on "
        "the cluster of RAY_ADDRESS, else on a local one bound to 127.0.0.1 (ray)",
    )
    p.add_argument(
        "--executor-cpus-per-job",
        type=float,
        default=None,
        help="CPUs Ray reserves per job (default 1)",
    )
    p.set_defaults(func=cmd_experiment, allow_extra=True)

    p = add_command(
        "tune",
        help="tune a ranking model's trainer and model options with Ray Tune (ASHA), chosen on "
        "validation; extra --option value pairs are fixed in every trial",
    )
    add_data_arguments(p, "ml-100k")
    p.add_argument("--model", default="mf", help="mf, neumf, ngcf, lightgcn")
    p.add_argument(
        "--space",
        required=True,
        help="YAML file: option: value, or option: {uniform|loguniform|randint: [low, high]} "
        "or {choice: [values]}",
    )
    p.add_argument("--protocol", default=None, help="split protocol (default: the dataset's)")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--seed", type=int, default=2024)
    p.add_argument("--out", default=None, help="output directory (default runs/tune-DATA-MODEL)")
    p.add_argument("--trials", type=int, default=20, help="most trials (default 20)")
    p.add_argument("--max-epochs", type=int, default=50, help="epochs of a trial ASHA never stops")
    p.add_argument("--eval-every", type=int, default=1, help="epochs between validations")
    p.add_argument("--grace", type=int, default=2, help="validations before ASHA may stop a trial")
    p.add_argument("--reduction-factor", type=int, default=3, help="ASHA's eta (default 3)")
    p.add_argument(
        "--time-budget",
        type=float,
        default=3600.0,
        help="seconds for the whole run; no trial starts after (default 3600)",
    )
    p.add_argument("--cpus-per-trial", type=int, default=1, help="CPUs and torch threads")
    p.add_argument("--resume", action="store_true", help="continue the killed tuning run in --out")
    p.set_defaults(func=cmd_tune, allow_extra=True)

    p = add_command(
        "compress", help="pack a model with per-row sizes into a safetensors file (real bytes)"
    )
    p.add_argument("--model", required=True, help="checkpoint with masked tables (.pt)")
    p.add_argument("--out", default=None, help="default: the model path with .safetensors")
    p.set_defaults(func=cmd_compress, allow_extra=False)

    p = add_command(
        "serve",
        help="serve a saved model over HTTP (top-k, next items and scores on raw IDs; OpenAPI "
        "at /docs)",
    )
    p.add_argument(
        "model",
        help="model.pt of leanrec train, a .safetensors of compress, a stream, CTR or next-item "
        "model file",
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument(
        "--cold-start",
        choices=["none", "popular"],
        default="none",
        help="an unknown user: a 404 (none) or the most popular items, flagged (popular)",
    )
    p.add_argument("--max-batch", type=int, default=64, help="most users per batched product")
    p.add_argument(
        "--max-wait-ms",
        type=float,
        default=1.0,
        help="how long a batch waits for more concurrent callers (never for a lone caller)",
    )
    p.add_argument("--threads", type=int, default=1, help="torch threads of the server")
    p.add_argument(
        "--padded-vectors",
        action="store_true",
        help="a packed MF: hold its rows padded to d_max for faster lone requests (the dense "
        "model's memory); default: score from the packed tables",
    )
    p.set_defaults(func=cmd_serve, allow_extra=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = make_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and not args.allow_extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        return int(args.func(args, extra))
    except TrainingError as error:  # the run diverged: the message names the setting to lower
        print(f"leanrec {args.command}: error: {error}", file=sys.stderr)
        return 1
    except (DataError, KeyError, ValueError, OSError) as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"leanrec {args.command}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
