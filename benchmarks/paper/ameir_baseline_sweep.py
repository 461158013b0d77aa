"""An equal tuning sweep for AMEIR's hand-designed baselines: DeepFM on ML-1M CTR, SASRec and
GRU4Rec on Beauty next-item retrieval.

AMEIR's settings were chosen over several configurations (14 for the `leanrec` preset on ML-1M
CTR, 2 for the retrieval backbone on Beauty); the baselines it is compared with kept one. Here
a baseline gets a validation sweep over its main training hyper-parameters, with at least
``max(6, AMEIR's count)`` configurations, today's default among them:

* ``--protocol ctr`` (ML-1M CTR, DeepFM by default): learning rate x batch size x dropout of the
  deep tower (16 configurations), each trained as the experiment trains its CTR baselines
  (early stopping on validation AUC, at most ``--epochs`` epochs, patience ``--patience``).
* ``--protocol retrieval`` (Beauty, ``--model sasrec|gru4rec``): learning rate x dropout
  (9 configurations), each trained by the very method object of ``leanrec experiment
  architecture --dataset beauty`` (the Beauty table's loss, batch, patience and validation
  cadence, early stopping on validation NDCG@5 against the seed's 100 uniform negatives).

The architecture (embedding width, tower widths, blocks) stays fixed, so the parameter count
does not move. Every configuration is trained on the first seed only; the one with the best
validation figure is chosen, and only then is it trained on every seed and tested, once.

Resumable: each finished configuration is written to ``<out>/sweep.json`` and each chosen-seed
row to ``<out>/final.json`` (a training also checkpoints after every validated epoch, under
``<out>/cells/``); a rerun continues, a killed training from its last epoch while its run
directory lasts. ``--lane I N`` runs every N-th configuration and seed in a process of its own.
``--progress FILE`` also keeps every finished training in one file, read first: a sweep that
outlives its run directory continues from it in a new run directory. Writes
``results/ameir_baseline_sweep[--TAG].json`` (retrieval: the tag defaults to the model,
``ameir_baseline_sweep--sasrec.json``) with the grid, both configuration counts, every
configuration's validation figures, the choice, its test figures per seed, and the default
configuration's test figures from the headline results file. Run from the repository root::

    python -m benchmarks.paper.ameir_baseline_sweep --out runs/ameir-sweep-deepfm \\
        --seeds 0 1 2 3 4 --threads 1
    python -m benchmarks.paper.ameir_baseline_sweep --protocol retrieval --model sasrec \\
        --out runs/ameir-sweep-sasrec --seeds 0 1 2 --threads 1 --lane 0 2   # and --lane 1 2
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from benchmarks.common import add_tag_argument, data_dir, print_table, write_results
from leanrec.runner.final import final_evaluation
from leanrec.runner.rundir import atomic_write_json

SCRIPT = "ameir_baseline_sweep"
Config = dict[str, Any]
"""One point of a grid: hyper-parameter name -> value."""
Log = Callable[[str], None]

CTR_GRID: dict[str, tuple[Any, ...]] = {
    "learning_rate": (5e-4, 1e-3, 2e-3, 4e-3),
    "batch_size": (1024, 4096),
    "dropout": (0.0, 0.3),
}
"""DeepFM's sweep (16 configurations); the experiment's default is lr 1e-3, batch 1024,
no dropout."""
CTR_DEFAULT: Config = {"learning_rate": 1e-3, "batch_size": 1024, "dropout": 0.0}
CTR_PROPOSED_CONFIGURATIONS = 14
"""Configurations over which AMEIR's `leanrec` preset settings were chosen on ML-1M CTR
(docs/results/architecture.md, "The paper's AMEIR beside leanrec's presets")."""

RETRIEVAL_GRIDS: dict[str, dict[str, tuple[Any, ...]]] = {
    "sasrec": {"learning_rate": (1e-3, 2e-3, 4e-3), "dropout": (0.3, 0.5, 0.7)},
    "gru4rec": {"learning_rate": (1e-3, 2e-3, 4e-3), "dropout": (0.0, 0.25, 0.5)},
}
"""The next-item baselines' sweeps (9 configurations each): the step size and the encoder's
dropout, from the Beauty table's setting (lr 1e-3; SASRec's dropout 0.5, GRU4Rec's 0.25). The
step size goes up only: at 1e-3 SASRec validates best near the table's cap of 40 epochs
(docs/results/architecture.md), so a smaller step would stop further from convergence. Width,
blocks, heads and the window stay fixed, and so the parameter count."""
RETRIEVAL_PROPOSED_CONFIGURATIONS = 2
"""Configurations over which AMEIR's retrieval settings were chosen on Beauty: the backbone
with the blocks alone (``results/ameir_beauty_table--no-positions.json``, validation NDCG@5
0.2870) and with SASRec's positions, input dropout and final norm (``ameir_beauty_table.json``,
0.3097), on seed 0's validation (docs/design/ameir-one-shot.md, "The retrieval backbone")."""
MIN_CONFIGURATIONS = 6
"""The least a baseline's sweep holds, whatever the proposed method's count."""


@dataclass
class Trained:
    """One finished training of a baseline."""

    model: Any
    """What :meth:`SweepProtocol.test` scores (the trained model, or the protocol's wrapper)."""
    valid: dict[str, float]
    """Validation figures by name (``valid_auc``; ``valid_ndcg@5``, ``valid_hit@5``, ...)."""
    best_epoch: int
    seconds: float
    """Wall seconds of the training."""


class SweepProtocol(Protocol):
    """How one table's baselines are trained, validated and tested; the sweep loop is shared."""

    name: str
    dataset: str
    selection_metric: str
    """The validation figure the choice maximises (a key of :attr:`Trained.valid`)."""
    report_metrics: tuple[str, ...]
    """Test figures kept per seed in the results (``<metric>_by_seed``)."""
    headline_fields: tuple[str, ...]
    """Summary fields read from the headline results file for the default configuration."""
    proposed_configurations: int
    epochs: int
    patience: int

    def grid(self, model: str) -> dict[str, tuple[Any, ...]]: ...

    def default(self, model: str) -> Config: ...

    def fit(self, model: str, config: Config, seed: int, workdir: Path) -> Trained:
        """Train ``model`` with ``config`` from ``seed``; ``workdir`` may hold its checkpoints."""
        ...

    def test(self, model: str, trained: Trained, seed: int) -> dict[str, float]:
        """Test figures by name (``test_*``); called once per seed, inside the final
        evaluation."""
        ...


def configurations(grid: dict[str, tuple[Any, ...]]) -> list[Config]:
    """Every point of ``grid``, in a fixed order (the last name varies fastest)."""
    names = list(grid)
    return [dict(zip(names, values)) for values in itertools.product(*grid.values())]


def config_key(config: Config) -> str:
    return ",".join(f"{k}={config[k]}" for k in sorted(config))


def required_configurations(proposed: int) -> int:
    """The least configurations a baseline's sweep needs: ``max(6, proposed)``."""
    return max(MIN_CONFIGURATIONS, proposed)


# --------------------------------------------------------------------------- protocols


@dataclass
class CTRSweep:
    """ML-1M CTR (AMEIR Tables 1 and 4): one split for every seed, validation AUC."""

    dataset: str = "ml-1m-ctr"
    epochs: int = 25
    """The headline command's ``--baseline_epochs``."""
    patience: int = 3
    """Its ``--retrain_patience``."""
    threads: int = 1
    name: str = "ctr"
    selection_metric: str = "valid_auc"
    report_metrics: tuple[str, ...] = ("test_auc",)
    headline_fields: tuple[str, ...] = ("test_auc_mean", "test_auc_std", "valid_auc_mean")
    proposed_configurations: int = CTR_PROPOSED_CONFIGURATIONS
    _split: Any = field(default=None, repr=False)

    def grid(self, model: str) -> dict[str, tuple[Any, ...]]:
        return CTR_GRID

    def default(self, model: str) -> Config:
        return dict(CTR_DEFAULT)

    def _data(self) -> Any:
        if self._split is None:
            from leanrec.data.registry import load_behavior_dataset

            self._split = load_behavior_dataset(self.dataset, data_dir())
        return self._split

    def fit(self, model: str, config: Config, seed: int, workdir: Path) -> Trained:
        """Train from scratch, or resume a killed training from ``workdir/train_state.pt``
        (written after every validated epoch; the directory is removed once trained).

        Raises:
            SystemExit: the checkpoint was written under other trainer settings (another
                ``epochs`` or ``patience``): it would continue that training, not this one.
        """
        from leanrec.models.ctr import build_ctr_model
        from leanrec.train import pointwise
        from leanrec.train.checkpoint import load_checkpoint

        split = self._data()
        built = build_ctr_model(
            model, split.feature_map, seed=seed, dropout=float(config["dropout"])
        )
        workdir.mkdir(parents=True, exist_ok=True)
        checkpoint = workdir / "train_state.pt"
        trainer = pointwise.CTRTrainer(
            pointwise.CTRTrainerConfig(
                embedding_optimizer="dense_adam",  # as the experiment's baselines are trained
                learning_rate=float(config["learning_rate"]),
                batch_size=int(config["batch_size"]),
                max_epochs=self.epochs,
                patience=self.patience,
                seed=seed,
                num_threads=self.threads,
                progress=False,
            ),
            checkpoint_path=checkpoint,
        )
        if checkpoint.is_file():
            _check_resumed_settings(load_checkpoint(checkpoint), trainer.config, checkpoint)
        trained = trainer.fit(built, split.train, split.valid, resume=checkpoint.is_file())
        shutil.rmtree(workdir, ignore_errors=True)
        valid = {"valid_auc": float(trained.best_valid["auc"])}
        # trained.seconds counts the time before a kill too (kept in the checkpoint)
        return Trained(built, valid, int(trained.best_epoch), float(trained.seconds))

    def test(self, model: str, trained: Trained, seed: int) -> dict[str, float]:
        from leanrec.train.pointwise import evaluate_ctr

        test = evaluate_ctr(trained.model, self._data().test)
        return {"test_auc": float(test["auc"]), "test_logloss": float(test["logloss"])}


def _check_resumed_settings(state: dict[str, Any], config: Any, path: Path) -> None:
    """Refuse a checkpoint whose trainer settings differ from ``config``'s (threads and the
    progress bar aside)."""
    current = dataclasses.asdict(config)
    saved = state.get("config", {})
    ignored = {"num_threads", "progress"}
    differ = sorted(
        name
        for name in current
        if name not in ignored and _plain(saved.get(name)) != _plain(current[name])
    )
    if differ:
        raise SystemExit(
            f"{path} was written with other trainer settings ({', '.join(differ)}): "
            "delete it to train afresh"
        )


def _plain(value: Any) -> Any:
    """Tuples as lists, so that a setting compares equal however it was stored."""
    return list(value) if isinstance(value, tuple) else value


@dataclass
class RetrievalSweep:
    """Beauty next-item retrieval (AMEIR Table 2): each seed draws its own validation and test
    negatives, as the experiment's seeds do; validation NDCG@5 against 100 uniform negatives.

    ``experiment`` is the Beauty table's experiment (its command's ``--baseline_epochs 40``,
    one thread); ``splits(seed)`` replaces the registry data (tests)."""

    experiment: Any = None
    """A :class:`~leanrec.search.architecture.config.RetrievalExperiment` (None: the Beauty
    table's, built from ``dataset``, ``epochs`` and ``threads``)."""
    dataset: str = "beauty"
    epochs: int = 40
    """The Beauty command's ``--baseline_epochs``."""
    patience: int = 4
    """``RetrievalSearchConfig.retrain_patience`` (validations without improvement)."""
    threads: int = 1
    grids: dict[str, dict[str, tuple[Any, ...]]] = field(
        default_factory=lambda: dict(RETRIEVAL_GRIDS)
    )
    splits: Callable[[int], tuple[Any, Any]] | None = None
    name: str = "retrieval"
    selection_metric: str = "valid_ndcg@5"
    report_metrics: tuple[str, ...] = ("test_hit@5", "test_ndcg@5")
    headline_fields: tuple[str, ...] = (
        "test_hit@5_mean",
        "test_hit@5_std",
        "test_ndcg@5_mean",
        "test_ndcg@5_std",
        "valid_ndcg@5_mean",
    )
    proposed_configurations: int = RETRIEVAL_PROPOSED_CONFIGURATIONS
    _cached: tuple[int, Any] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        from leanrec.search.architecture.config import RetrievalExperiment, RetrievalSearchConfig

        if self.experiment is None:
            self.experiment = RetrievalExperiment(
                dataset=self.dataset,
                data_dir=str(data_dir()),
                baseline_epochs=self.epochs,
                config=RetrievalSearchConfig(
                    num_threads=self.threads, retrain_patience=self.patience
                ),
            )
        self.dataset = str(self.experiment.dataset)
        self.epochs = self.experiment.baseline_epochs
        self.patience = self.experiment.config.retrain_patience

    def grid(self, model: str) -> dict[str, tuple[Any, ...]]:
        return self.grids[model]

    def default(self, model: str) -> Config:
        from leanrec.models.seq import SEQUENCE_ENCODERS

        dropout = SEQUENCE_ENCODERS[model][1]().dropout
        return {"learning_rate": self.experiment.config.learning_rate, "dropout": dropout}

    def _splits(self, seed: int) -> tuple[Any, Any]:
        """The seed's split and the same split with popularity negatives (one seed held)."""
        if self._cached is None or self._cached[0] != seed:
            from leanrec.search.architecture.retrieval_experiment import registry_splits

            self._cached = None  # free the previous seed's data first
            pair = self.splits(seed) if self.splits else registry_splits(self.experiment, seed)
            self._cached = (seed, pair)
        return self._cached[1]

    def fit(self, model: str, config: Config, seed: int, workdir: Path) -> Trained:
        from leanrec.runner.rundir import RunDirectory
        from leanrec.search.architecture.baselines import (
            NEXT_ITEM_METHODS,
            HandDesignedNextItem,
            NextItemCell,
        )
        from leanrec.train.sequential import evaluate_next_item

        split, _ = self._splits(seed)
        hand_designed = NEXT_ITEM_METHODS[model]
        assert isinstance(hand_designed, HandDesignedNextItem)  # the sweep tunes baselines only
        method = dataclasses.replace(hand_designed, dropout=float(config["dropout"]))
        search = dataclasses.replace(
            self.experiment.config, learning_rate=float(config["learning_rate"]), seed=seed
        )
        run = RunDirectory(workdir, log=None)  # the training's checkpoint resumes a kill
        fitted = method.fit(NextItemCell(self.experiment, split, search, run, run.log))
        valid = evaluate_next_item(fitted.model, split.valid, "sampled", (5, 10))
        shutil.rmtree(workdir, ignore_errors=True)
        figures = {f"valid_{name}": float(valid[name]) for name in ("hit@5", "ndcg@5", "ndcg@10")}
        return Trained(
            (fitted, valid), figures, int(fitted.extra["best_epoch"]), fitted.train_seconds
        )

    def test(self, model: str, trained: Trained, seed: int) -> dict[str, float]:
        from leanrec.search.architecture.retrieval_experiment import next_item_row

        split, other = self._splits(seed)
        fitted, valid = trained.model
        row = next_item_row(model, seed, fitted, valid, split.test, other.test)
        return {k: float(v) for k, v in row.items() if k.startswith("test_") or k == "parameters"}


PROTOCOLS: dict[str, Callable[..., SweepProtocol]] = {"ctr": CTRSweep, "retrieval": RetrievalSweep}
DEFAULT_MODELS = {"ctr": "deepfm", "retrieval": "sasrec"}


# --------------------------------------------------------------------------- the sweep


def _load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text()) if path.is_file() else {}


def _merged(folder: Path, stem: str) -> dict[str, Any]:
    """The entries of ``<stem>.json`` and of every lane's ``<stem>-lane<i>.json`` in ``folder``."""
    merged: dict[str, Any] = {}
    for path in sorted(folder.glob(f"{stem}*.json")):
        merged.update(_load(path))
    return merged


def run_sweep(
    protocol: SweepProtocol,
    model: str,
    out: Path,
    seeds: list[int],
    lane: tuple[int, int] | None = None,
    log: Log = print,
    on_progress: Callable[[], None] | None = None,
) -> dict[str, Any] | None:
    """Run (or resume) the sweep of ``model`` in ``out``; the flat results once every
    configuration and every seed is done, else None (other lanes still have work).

    Stage 1 trains every configuration on ``seeds[0]`` and keeps its validation figures only;
    stage 2 chooses the configuration with the best ``protocol.selection_metric`` and trains
    it on every seed, each then tested once. ``lane = (i, n)`` runs the configurations and
    seeds whose position is ``i`` modulo ``n`` and writes its own files, which every lane reads.
    ``on_progress`` is called after every finished training (:func:`save_progress`).
    """
    out.mkdir(parents=True, exist_ok=True)
    index, lanes = lane if lane is not None else (0, 1)
    suffix = "" if lane is None else f"-lane{index}"
    sweep_file, final_file = out / f"sweep{suffix}.json", out / f"final{suffix}.json"
    grid = protocol.grid(model)
    points = configurations(grid)
    metric = protocol.selection_metric

    own = _load(sweep_file)
    sweep = {**_merged(out, "sweep"), **own}
    for i, config in enumerate(points, 1):
        key = config_key(config)
        if key in sweep or (i - 1) % lanes != index:
            continue
        trained = protocol.fit(model, config, seeds[0], out / "cells" / f"{key}-seed{seeds[0]}")
        sweep[key] = own[key] = {
            **config,
            **trained.valid,
            "best_epoch": trained.best_epoch,
            "train_seconds": trained.seconds,
        }
        atomic_write_json(sweep_file, own)
        if on_progress is not None:
            on_progress()
        log(
            f"[{i}/{len(points)}] {model} {key}: {metric} {trained.valid[metric]:.4f} "
            f"(epoch {trained.best_epoch}, {trained.seconds:.0f} s)"
        )
    keys = {config_key(config) for config in points}
    sweep = {k: v for k, v in _merged(out, "sweep").items() if k in keys}
    if len(sweep) < len(points):
        log(f"{len(points) - len(sweep)} configurations still to run in other lanes")
        return None
    chosen_key = max(sweep, key=lambda k: sweep[k][metric])
    chosen = {name: sweep[chosen_key][name] for name in grid}
    log(f"chosen on validation (seed {seeds[0]}): {chosen_key}")

    for path in out.glob("final*.json"):
        if _load(path).get("chosen") != chosen_key:
            raise RuntimeError(
                f"{path} holds rows of {_load(path).get('chosen')}, not {chosen_key}"
            )
    final = _load(final_file)
    final["chosen"] = chosen_key
    own_rows: dict[str, Any] = final.setdefault("rows", {})
    rows = {s: r for path in out.glob("final*.json") for s, r in _load(path)["rows"].items()}
    for position, seed in enumerate(seeds):
        if str(seed) in rows or position % lanes != index:
            continue
        trained = protocol.fit(model, chosen, seed, out / "cells" / f"{chosen_key}-seed{seed}")
        with final_evaluation():
            test = protocol.test(model, trained, seed)
        rows[str(seed)] = own_rows[str(seed)] = {
            **trained.valid,
            **test,
            "best_epoch": trained.best_epoch,
            "train_seconds": trained.seconds,
        }
        atomic_write_json(final_file, final)
        if on_progress is not None:
            on_progress()
        shown = protocol.report_metrics[-1]
        log(
            f"seed {seed}: {metric} {trained.valid[metric]:.4f}, {shown} {test[shown]:.4f} "
            f"(epoch {trained.best_epoch}, {trained.seconds:.0f} s)"
        )
    names = [str(s) for s in seeds]
    if any(s not in rows for s in names):
        log("seeds still to run in other lanes")
        return None
    return summarise(protocol, model, grid, sweep, chosen_key, {s: rows[s] for s in names})


def save_progress(out: Path, progress: Path) -> None:
    """Every lane's finished trainings in ``out`` (configurations, and seed rows with the
    choice they belong to), merged into one file: a sweep that outlasts its run directory (on a
    machine that keeps only the repository) continues from it (:func:`load_progress`); a
    training under way when the directory went is lost.
    """
    finals = [_load(path) for path in sorted(out.glob("final*.json"))]
    rows = {seed: row for final in finals for seed, row in final.get("rows", {}).items()}
    state: dict[str, Any] = {"sweep": _merged(out, "sweep")}
    if finals:
        state["final"] = {"chosen": finals[0].get("chosen"), "rows": rows}
    atomic_write_json(progress, state)


def load_progress(out: Path, progress: Path) -> None:
    """The trainings of a progress file (:func:`save_progress`) as ``out``'s own files
    (``sweep-carried.json``, ``final-carried.json``), which :func:`run_sweep` reads as it reads
    every lane's; nothing when the file does not exist yet.
    """
    state = _load(progress)
    if not state:
        return
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "sweep-carried.json", state.get("sweep", {}))
    if "final" in state:
        atomic_write_json(out / "final-carried.json", state["final"])


def summarise(
    protocol: SweepProtocol,
    model: str,
    grid: dict[str, tuple[Any, ...]],
    sweep: dict[str, dict[str, Any]],
    chosen_key: str,
    rows: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    """The flat results: the grid, both counts, every configuration's validation figures, the
    choice and its figures over the seeds (mean, std; the report metrics per seed)."""
    metric = protocol.selection_metric
    default_key = config_key(protocol.default(model))
    results: dict[str, Any] = {
        "protocol": protocol.name,
        "dataset": protocol.dataset,
        "model": model,
        "grid": json.dumps(grid),
        "baseline_configurations": len(sweep),
        "proposed_configurations": protocol.proposed_configurations,
        "required_configurations": required_configurations(protocol.proposed_configurations),
        "selection_seed": int(next(iter(rows))),
        "selection_metric": metric,
        "chosen": chosen_key,
        "default": default_key,
        f"default_{metric}": sweep.get(default_key, {}).get(metric),
        f"chosen_{metric}": sweep[chosen_key][metric],
        "seeds": len(rows),
    }
    first = next(iter(rows.values()))
    for name in first:
        if name.startswith(("test_", "valid_")):
            values = np.array([row[name] for row in rows.values()])
            results[f"{name}_mean"] = float(values.mean())
            results[f"{name}_std"] = float(values.std())
    for name in protocol.report_metrics:
        results[f"{name}_by_seed"] = json.dumps({s: row[name] for s, row in rows.items()})
    if "parameters" in first:
        results["parameters"] = first["parameters"]
    results["epochs"] = protocol.epochs
    results["patience"] = protocol.patience
    results["sweep_train_seconds_total"] = float(sum(e["train_seconds"] for e in sweep.values()))
    results["final_train_seconds_total"] = float(sum(r["train_seconds"] for r in rows.values()))
    for key, entry in sweep.items():
        for name, value in entry.items():
            if name.startswith("valid_"):
                results[f"sweep_{name}[{key}]"] = value
        results[f"sweep_best_epoch[{key}]"] = entry["best_epoch"]
    return results


def add_headline(
    results: dict[str, Any], protocol: SweepProtocol, model: str, headline: Path
) -> None:
    """The default configuration's figures (and AMEIR's test means) from the headline table."""
    if not headline.is_file():
        return
    table = json.loads(headline.read_text())
    if not any(f"{model}_{name}" in table for name in protocol.headline_fields):
        raise SystemExit(f"{headline} has no {model} rows: give --headline")
    for name in protocol.headline_fields:
        if f"{model}_{name}" in table:
            results[f"default_{name}"] = table[f"{model}_{name}"]
        if name.startswith("test_") and name.endswith("_mean") and f"ameir_{name}" in table:
            results[f"ameir_{name}"] = table[f"ameir_{name}"]
    results["headline"] = str(headline)


HEADLINES = {
    # the headline runs with every baseline's rows (xDeepFM's too); AMEIR's are the headline's
    "ctr": Path("benchmarks/results/ameir_table--keep-best-all.json"),
    "retrieval": Path("benchmarks/results/ameir_beauty_table.json"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--protocol", choices=sorted(PROTOCOLS), default="ctr")
    parser.add_argument("--dataset", default=None, help="default: ml-1m-ctr / beauty")
    parser.add_argument("--model", default=None, help="default: deepfm / sasrec")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seeds", type=int, nargs="+", default=None, help="default 0-4 / 0-2")
    parser.add_argument(
        "--epochs", type=int, default=None, help="the headline's --baseline_epochs (25 / 40)"
    )
    parser.add_argument("--patience", type=int, default=None, help="default 3 / 4")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--headline",
        type=Path,
        default=None,
        help="results file of the headline table (its default-configuration baseline rows)",
    )
    parser.add_argument(
        "--lane",
        type=int,
        nargs=2,
        metavar=("I", "N"),
        default=None,
        help="run only configurations and seeds whose position is I modulo N (N processes "
        "side by side, each writing its own files); a lane stops where the others' results are "
        "still missing: rerun it, or once without --lane, to finish",
    )
    parser.add_argument(
        "--progress",
        type=Path,
        default=None,
        help="a JSON file kept with every finished training of the sweep (all lanes); read "
        "first, so a sweep spread over machines or run directories continues where it stopped",
    )
    add_tag_argument(parser, SCRIPT)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    settings = {
        name: getattr(args, name)
        for name in ("dataset", "epochs", "patience")
        if getattr(args, name)
    }
    protocol = PROTOCOLS[args.protocol](threads=args.threads, **settings)
    model = args.model or DEFAULT_MODELS[args.protocol]
    seeds = args.seeds or ([0, 1, 2, 3, 4] if args.protocol == "ctr" else [0, 1, 2])
    tag = args.tag if args.tag or args.protocol == "ctr" else model
    headline = args.headline or HEADLINES[args.protocol]
    add_headline({}, protocol, model, headline)  # a headline without the model stops here

    def log(message: str) -> None:
        print(f"{time.strftime('%H:%M:%S')} {message}", flush=True)

    progress = args.progress
    if progress is not None:
        load_progress(args.out, progress)
    try:
        results = run_sweep(
            protocol, model, args.out, seeds, args.lane, log,
            on_progress=None if progress is None else lambda: save_progress(args.out, progress),
        )  # fmt: skip
    finally:  # once more at the end: lanes saving side by side may each have missed the other
        if progress is not None:
            save_progress(args.out, progress)
    if results is None:
        return
    add_headline(results, protocol, model, headline)
    metric = protocol.selection_metric
    sweep = _merged(args.out, "sweep")
    print_table(
        ["configuration", metric], [[k, f"{v[metric]:.4f}"] for k, v in sorted(sweep.items())]
    )
    shown = ", ".join(
        f"{name} {results[f'{name}_mean']:.4f} ± {results[f'{name}_std']:.4f}"
        for name in protocol.report_metrics
    )
    print(f"{model}, chosen {results['chosen']}: {shown}")
    write_results(SCRIPT, results, tag)


if __name__ == "__main__":
    main()
