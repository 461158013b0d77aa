"""``leanrec tune``: Ray Tune over the trainer and model options of a ranking model.

Every trial trains the model of ``leanrec train`` (BPR, early stopping on validation) with the
options a space file draws (:mod:`leanrec.tune.space`) and reports each validation to Tune;
ASHA stops the trials that trail their rung. The best trial is chosen on validation only: the
trials get the training and validation interactions and never the test split. Outputs, in
``out_dir``::

    trials.csv, trials.json    one row per trial: its options, best validation, epochs, state
    best_config.json           the best trial's full run configuration and the arguments of
                               `leanrec train` that train it again (`train_args`)
    best_train_args.txt        the same, as one `leanrec train ...` command line
    trials/                    Ray Tune's experiment (what ``resume`` restores)

A tuning run killed at any point resumes with ``resume=True`` (Tune's restore): finished
trials are kept, unfinished ones start again. The run is bounded by ``trials`` and by
``time_budget_s``.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from leanrec.data.interactions import Interactions
from leanrec.data.own import DataFile, dataset_name
from leanrec.runner.executors import init_ray, shutdown_ray
from leanrec.runner.rundir import atomic_write_json, atomic_write_text, jsonable
from leanrec.tune.space import SearchSpace, read_space

SELECTION = "valid"
"""The metric every trial reports for the choice: its validation metric (higher is better)."""


@dataclass
class TuneSettings:
    """What to tune, on what, and within which bounds."""

    dataset: str | DataFile = "ml-100k"
    """A registered dataset or a file of one's own, split by ``protocol`` as ``leanrec train``
    splits it."""
    model: str = "mf"
    """A ranking model of ``leanrec train`` (``mf``, ``lightgcn``, ``ngcf``, ``neumf``)."""
    space: str = "space.yaml"
    """The space file (:mod:`leanrec.tune.space`)."""
    out_dir: str = "runs/tune"
    """Where the trials, the table and the best config go (resumed with ``resume``)."""
    protocol: str | None = None
    """Split protocol (None: the dataset's, as ``leanrec train``)."""
    data_dir: str | None = None
    """Where the dataset lives (None: ``LEANREC_DATA`` or the cache dir)."""
    seed: int = 2024
    """Seeds the split, every trial's training and the random search."""
    trials: int = 20
    """Most trials drawn from the space."""
    max_epochs: int = 50
    """Epochs of a trial that ASHA never stops (unless the space sets ``max_epochs``)."""
    eval_every: int = 1
    """Validate (and report to Tune) every this many epochs (unless the space sets it)."""
    grace_validations: int = 2
    """ASHA's grace period: validations every trial gets before it can be stopped."""
    reduction_factor: int = 3
    """ASHA's ``η``: the share ``1/η`` of the trials at a rung that go on."""
    time_budget_s: float | None = 3600.0
    """Wall time of the whole tuning run; no trial starts after it (None: no limit)."""
    cpus_per_trial: int = 1
    """CPUs (and torch threads) per trial; trials run at once as the cluster's CPUs allow."""
    fixed: dict[str, Any] = field(default_factory=dict)
    """Trainer or model options every trial shares (as given to ``leanrec train``)."""
    resume: bool = False
    """Continue the tuning run in ``out_dir`` (finished trials kept, unfinished ones started
    again); without it an existing run there is an error, not overwritten."""

    def __post_init__(self) -> None:
        for name in ("trials", "max_epochs", "eval_every", "grace_validations", "cpus_per_trial"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.reduction_factor < 2:
            raise ValueError(f"reduction_factor must be at least 2, got {self.reduction_factor}")
        if self.time_budget_s is not None and self.time_budget_s <= 0:
            raise ValueError(f"time_budget_s must be positive, got {self.time_budget_s}")


@dataclass
class TrialData:
    """What every trial reads (shared once through Ray's object store): the training and
    validation interactions only, so that no trial can look at test."""

    train: Interactions
    valid: Interactions
    valid_metric: str
    ks: list[int]


@dataclass
class TuneResult:
    """A finished tuning run: the trials (best first) and the best trial's configuration."""

    rows: list[dict[str, Any]]
    best: dict[str, Any]
    out_dir: Path

    def table(self) -> str:
        """The trials as a text table, best first."""
        if not self.rows:
            return "no trial finished"
        options = [k for k in self.rows[0]["options"]]
        head = ["rank", "trial", SELECTION, "epoch", "validations", *options]
        lines = ["  ".join(f"{h:>12}" for h in head)]
        for row in self.rows:
            values = [
                row["rank"],
                row["trial"],
                _fmt(row["best_valid"]),
                row["best_epoch"],
                row["validations"],
                *(_fmt(row["options"][k]) for k in options),
            ]
            lines.append("  ".join(f"{v!s:>12}" for v in values))
        return "\n".join(lines)


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


# ------------------------------------------------------------------------------ the trial
@dataclass
class TrialSettings:
    """What a trial needs besides its options (picklable, small)."""

    model: str
    space: SearchSpace
    fixed_trainer: dict[str, Any]
    fixed_model: dict[str, Any]
    trainer_base: Any
    seed: int


def run_trial(params: dict[str, Any], settings: TrialSettings, data: TrialData) -> None:
    """Ray Tune's trainable: train one configuration, report every validation.

    Reports ``valid`` (the selection metric), every ``valid_*`` metric and ``epoch``.
    """
    from ray import tune

    from leanrec.models import build_model
    from leanrec.models.registry import make_model_config
    from leanrec.options import build_config
    from leanrec.train.bpr import BPRTrainer, TrainerConfig

    # Tune draws NumPy scalars: as plain numbers, a trial computes what `leanrec train` with
    # the same options computes (a NumPy float times a tensor would change the arithmetic)
    trainer_options, model_options = settings.space.split(jsonable(params))
    trainer = build_config(
        TrainerConfig, {**settings.fixed_trainer, **trainer_options}, base=settings.trainer_base
    )
    model_config = make_model_config(settings.model, {**settings.fixed_model, **model_options})
    model = build_model(settings.model, data.train, model_config, seed=settings.seed)
    key = f"valid_{trainer.valid_metric}"

    def report(epoch: int, record: dict[str, float]) -> None:
        if key in record and epoch > 0:
            metrics = {k: float(v) for k, v in record.items() if k.startswith("valid_")}
            tune.report({SELECTION: float(record[key]), "epoch": epoch, **metrics})

    BPRTrainer(model, data.train, data.valid, trainer, on_epoch=report).fit()


# ------------------------------------------------------------------------------ the run
def tune_model(settings: TuneSettings, log: Callable[[str], None] = print) -> TuneResult:
    """Run (or, with an existing ``out_dir/trials``, resume) a tuning run; write the table of
    trials and the best config; return them.

    Raises:
        DataError: a bad space file (its file and line named).
        ValueError: a bad setting or option.
    """
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search import BasicVariantGenerator

    from leanrec.data.presets import prepare_split
    from leanrec.models.registry import model_class
    from leanrec.options import route_options
    from leanrec.train.bpr import TrainerConfig
    from leanrec.tune.space import ALIASES

    model_config_class = model_class(settings.model).config_class
    space = read_space(settings.space, TrainerConfig, model_config_class)
    fixed_trainer, fixed_model = route_options(
        settings.fixed, [TrainerConfig, model_config_class], ALIASES
    )
    split, protocol = prepare_split(
        settings.dataset, settings.protocol, settings.data_dir, settings.seed
    )
    trainer_base = TrainerConfig(
        seed=settings.seed,
        max_epochs=settings.max_epochs,
        eval_every=settings.eval_every,
        valid_metric=protocol.valid_metric,
        ks=list(protocol.ks),
        num_threads=settings.cpus_per_trial,
        progress=False,
    )
    trial_settings = TrialSettings(
        settings.model, space, fixed_trainer, fixed_model, trainer_base, settings.seed
    )
    data = TrialData(split.train, split.valid, protocol.valid_metric, list(protocol.ks))
    out = Path(settings.out_dir).resolve()
    experiment = out / "trials"
    if settings.resume and not tune.Tuner.can_restore(str(experiment)):
        raise ValueError(f"nothing to resume: no tuning run in {experiment}")
    if not settings.resume and experiment.exists():
        raise ValueError(
            f"{experiment} holds a tuning run: resume it (--resume) or choose another --out"
        )
    began = time.perf_counter()
    temp_dir = init_ray(log_to_driver=False)
    try:
        trainable = tune.with_resources(
            tune.with_parameters(run_trial, settings=trial_settings, data=data),
            {"cpu": settings.cpus_per_trial},
        )
        if settings.resume:
            log(f"resuming the tuning run in {experiment}")
            tuner = tune.Tuner.restore(
                str(experiment), trainable=trainable, resume_unfinished=True, resume_errored=True
            )
        else:
            epochs, every = _max_epochs(space, trainer_base), _eval_every(space, trainer_base)
            max_reports = math.ceil(epochs / every)
            scheduler = ASHAScheduler(
                time_attr="training_iteration",
                max_t=max(max_reports, settings.grace_validations),
                grace_period=settings.grace_validations,
                reduction_factor=settings.reduction_factor,
            )
            tuner = tune.Tuner(
                trainable,
                param_space=space.to_tune(),
                tune_config=tune.TuneConfig(
                    metric=SELECTION,
                    mode="max",
                    scheduler=scheduler,
                    search_alg=BasicVariantGenerator(random_state=settings.seed),
                    num_samples=settings.trials,
                    time_budget_s=settings.time_budget_s,
                ),
                run_config=tune.RunConfig(
                    name="trials", storage_path=str(out), verbose=0, log_to_file=True
                ),
            )
        log(
            f"tuning {settings.model} on {dataset_name(settings.dataset)}: up to "
            f"{settings.trials} trials, {space.path} ({len(space.dimensions)} options)"
        )
        grid = tuner.fit()
        rows = _trial_rows(grid)
    finally:
        shutdown_ray(temp_dir)
    if not rows:
        raise RuntimeError(f"no trial reported a validation; see {experiment}")
    best = _best_config(rows[0], settings, trial_settings, protocol.name)
    _write_outputs(out, rows, best)
    seconds = time.perf_counter() - began
    log(f"{len(rows)} trials in {seconds:.0f} s; best: trial {rows[0]['trial']}")
    return TuneResult(rows, best, out)


def _max_epochs(space: SearchSpace, base: Any) -> int:
    return max([base.max_epochs, *_space_values(space, "max_epochs")])


def _eval_every(space: SearchSpace, base: Any) -> int:
    return min([base.eval_every, *_space_values(space, "eval_every")])


def _space_values(space: SearchSpace, option: str) -> list[int]:
    return [int(v) for d in space.dimensions if d.option == option for v in d.extremes()]


def _trial_rows(grid: Any) -> list[dict[str, Any]]:
    """One row per trial that reported, best validation first (ties: the earlier trial)."""
    rows = []
    for result in grid:
        history = result.metrics_dataframe
        if history is None or SELECTION not in history:
            continue
        history = history.dropna(subset=[SELECTION])
        if history.empty:
            continue
        best_index = int(history[SELECTION].to_numpy().argmax())  # first of equals
        best = history.iloc[best_index]
        trial_id = str(result.metrics.get("trial_id", Path(result.path).name))
        rows.append(
            {
                "trial": trial_id,
                "options": jsonable(result.config),
                "best_valid": float(best[SELECTION]),
                "best_epoch": int(best["epoch"]),
                "valid": {
                    k[len("valid_") :]: float(best[k])
                    for k in history.columns
                    if k.startswith("valid_") and not math.isnan(float(best[k]))
                },
                "validations": len(history),
                "last_epoch": int(history["epoch"].iloc[-1]),
                "error": None if result.error is None else str(result.error),
            }
        )
    rows.sort(key=lambda row: (-row["best_valid"], row["trial"]))
    for rank, row in enumerate(rows, start=1):
        row["rank"] = rank
    return rows


def _best_config(
    best: dict[str, Any], settings: TuneSettings, trial: TrialSettings, protocol: str
) -> dict[str, Any]:
    """The best trial as the run configuration of ``leanrec train`` and its arguments."""
    from leanrec.models.registry import make_model_config
    from leanrec.options import build_config
    from leanrec.train.bpr import TrainerConfig

    trainer_options, model_options = trial.space.split(best["options"])
    trainer_options = {**trial.fixed_trainer, **trainer_options}
    model_options = {**trial.fixed_model, **model_options}
    trainer = build_config(TrainerConfig, trainer_options, base=trial.trainer_base)
    model_config = make_model_config(settings.model, model_options)
    # what `leanrec train` needs to train the same run: the dataset, the seed, and every
    # trainer setting the trials fixed or drew (the rest are its defaults)
    defaults = TrainerConfig(seed=settings.seed)
    changed = {
        f.name: getattr(trainer, f.name)
        for f in dataclasses.fields(TrainerConfig)
        if f.name not in ("progress", "valid_metric", "ks")
        and getattr(trainer, f.name) != getattr(defaults, f.name)
    }
    options = {**changed, **{k: getattr(model_config, k) for k in model_options}}
    args = [*_data_args(settings), "--model", settings.model, "--seed", str(settings.seed)]
    for name, value in options.items():
        args += [f"--{name}", _arg(value)]
    return {
        "dataset": jsonable(settings.dataset),
        "model": settings.model,
        "protocol": protocol,
        "seed": settings.seed,
        "trainer": jsonable(trainer),
        "model_options": jsonable(model_options),
        "model_config": jsonable(model_config),
        "trial": best["trial"],
        "valid": best["valid"],
        "best_epoch": best["best_epoch"],
        "train_args": args,
    }


def _data_args(settings: TuneSettings) -> list[str]:
    if isinstance(settings.dataset, DataFile):
        raise ValueError("tuning a file of one's own is not supported yet: give --dataset NAME")
    args = ["--dataset", settings.dataset]
    if settings.protocol is not None:
        args += ["--protocol", settings.protocol]
    if settings.data_dir is not None:
        args += ["--data-dir", settings.data_dir]
    return args


def _arg(value: Any) -> str:
    """A value as ``leanrec train`` reads it back (``repr`` keeps every float digit)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "none"
    if isinstance(value, list | tuple):
        return json.dumps(list(value), separators=(",", ":"))
    return repr(value) if isinstance(value, float) else str(value)


def _write_outputs(out: Path, rows: list[dict[str, Any]], best: dict[str, Any]) -> None:
    atomic_write_json(out / "trials.json", rows)
    atomic_write_json(out / "best_config.json", best)
    atomic_write_text(
        out / "best_train_args.txt", "leanrec train " + shlex.join(best["train_args"]) + "\n"
    )
    options = sorted({k for row in rows for k in row["options"]})
    metrics = sorted({k for row in rows for k in row["valid"]})
    tmp = out / "trials.csv.tmp"
    with tmp.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            ["rank", "trial", SELECTION, "best_epoch", "validations", "last_epoch", "error"]
            + options
            + [f"valid_{m}" for m in metrics]
        )
        for row in rows:
            writer.writerow(
                [row["rank"], row["trial"], repr(row["best_valid"]), row["best_epoch"]]
                + [row["validations"], row["last_epoch"], row["error"] or ""]
                + [row["options"].get(k, "") for k in options]
                + [repr(row["valid"][m]) if m in row["valid"] else "" for m in metrics]
            )
    tmp.replace(out / "trials.csv")


__all__ = ["SELECTION", "TrialData", "TuneResult", "TuneSettings", "run_trial", "tune_model"]
