"""The adaptive tower against its baselines on the ML-1M, ML-100K and planted-drift streams.

Runs :func:`leanrec.search.adaptive.run_experiment` (every method of ``METHODS``: the
``paper`` preset ``adaptive`` and the ``leanrec`` preset ``adaptive_leanrec``, each with its
``λ`` chosen on each seed's warm-up sessions and its whole ``λ`` grid run over the stream as a
curve that chooses nothing; the variants ``adaptive_a2c``, ``adaptive_leanrec_freeze`` and
``adaptive_leanrec_ewc`` at their preset's headline ``λ``) and computes what it must show from
the rows, for each preset (keys ``<dataset>|goal|<controller>|…``):

1. **Accuracy at half the size** (every stream): the adaptive model's prequential AUC (pooled
   over every evaluated event, mean over seeds) is within 0.5% (relative) of fixed-large's, with
   at most 50% of fixed-large's mean tower parameters (the shaped part, mean over the evaluated
   sessions and seeds). The whole model's bytes are reported beside it.
2. **The accuracy-size plane**: at its headline ``λ`` the adaptive model is above the line
   through fixed-small and fixed-large, the line drawn in (log10 tower parameters, AUC) as the
   plot draws it (a point beyond either end is judged against the line extended), and it
   dominates always-grow and the loss-threshold rule: AUC at least theirs and mean tower
   parameters at most theirs, one of the two strictly.
3. Per-session plots: AUC and tower parameters of every method per evaluated session (mean over
   seeds), and the controller's choices (widths per layer per session, warm-up included).
4. **Growth at the drift** (the planted-drift stream): with ``D`` the first evaluated session
   holding drifted events, ``growth(b)`` is the mean of the tower's hidden units (the sum of the
   widths) over sessions ``b .. b+2`` minus its mean over ``b-3 .. b-1``. The controller grows
   at the drift when ``growth(D) > 0`` and ``growth(D)`` is above the mean of ``growth(b)`` over
   every other boundary ``b`` with three sessions on each side (a method that grows by the
   same amount at every session is not growing *because of* the drift), both in the mean over
   seeds. The same figures are given for the loss-threshold rule and always-grow, and, as the
   check that the planted drift makes capacity pay, fixed-large's mean session AUC minus
   fixed-small's before ``D`` and from ``D`` on, and over the three sessions on either side.

Streams: ``ml-1m-partial`` and ``ml-100k`` from the registry (time order; a warm-up of the first
20% in eight sessions, then 20 sessions of equal event counts), and ``planted-drift``,
:func:`~leanrec.data.synthetic_stream.make_synthetic_stream` with a planted drift at 60% of
120,000 events (:data:`DRIFT`): the first drifted session is evaluated session 10 (counting
from 0; its first event is the drift's).

``planted-drift-neumf`` (not run by default) is the planted-drift stream with NeuMF's MLP as
the shaped tower: the fixed towers and the leanrec preset at its headline ``λ``.

Runs go to resumable run directories outside git (``--runs``, default
``runs/adaptive_stream[--TAG]/<dataset>``): killed and restarted, the experiment continues after
its last finished session. The results file is assembled from every row the run directories
hold and says, per dataset, which rows are missing (``<dataset>|partial``). Writes
``results/adaptive_stream.json`` (flat), ``adaptive_stream.png`` (the accuracy-size plane),
``adaptive_stream--sessions.png`` (AUC and tower parameters per session) and
``adaptive_stream--choices.png`` (the controller's widths per session); ``--tag T`` writes
``adaptive_stream--T*``. Run from the repository root:

    python -m benchmarks.paper.adaptive_stream [--dataset planted-drift ml-100k ml-1m-partial] \\
        [--seeds 0 1 2] [--tag T] [--no-run]
    python -m benchmarks.paper.adaptive_stream --quick   # a tiny drift stream, seconds

``--towers warmup`` (``--towers stream``) runs only the towers below fixed-small that a shrink
reaches (48-16, 32-16, 16-16) beside the fixed towers, and the leanrec preset at its headline
``λ`` with its floor lowered to 32-16 and removed, on each stream's scored warm-up sessions
(over the whole stream, figures of the evaluated sessions; chooses nothing), and writes
``adaptive_stream--warmup-towers.json`` (``--stream-towers``): whether a tower narrower than
fixed-small holds its accuracy, and where it sits against the line of goal 2
(:func:`narrow_towers`).

Seeds may run in parallel in separate roots (``--runs A --seeds 0 1`` and ``--runs B --seeds
2``) and be assembled by ``--runs A --merge B --seeds 0 1 2 --no-run``. A method changed since
a run reruns alone in new roots (``--methods M --no-sweep``: at its headline ``λ`` only; one
root per seed in parallel) and is assembled by ``--runs N0 --rerun N1 N2 --merge OLD...
--drop M [variants of M] --no-run``: rows of the new roots win, the dropped methods' rows of the
older roots are left out, and a dropped method that was not rerun is not expected.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import add_tag_argument, data_dir, print_table, results_path, write_results
from leanrec.data.events import EventStream
from leanrec.data.synthetic_stream import make_synthetic_stream
from leanrec.search.adaptive import AdaptiveExperiment, run_experiment
from leanrec.search.adaptive.config import DEFAULT_METHODS

SCRIPT = "adaptive_stream"
DATASETS = ("planted-drift", "ml-100k", "ml-1m-partial")
DRIFT_DATASET = "planted-drift"
NEUMF_DATASET = "planted-drift-neumf"
"""The planted-drift stream with NeuMF's MLP as the shaped tower (``--dataset
planted-drift-neumf``, not run by default): the fixed towers and the leanrec preset at its
headline ``λ`` (:data:`NEUMF_METHODS`, no sweep)."""
NEUMF_METHODS = ("fixed_small", "fixed_medium", "fixed_large", "adaptive_leanrec")
DRIFT_DATASETS = (DRIFT_DATASET, NEUMF_DATASET)
DRIFT: dict[str, Any] = {
    "n_events": 120_000,
    "n_users": 2_000,
    "n_items": 1_000,
    "dim": 8,
    "growing_population": False,
    "drift_at": 0.6,
    "drift_items": 200,
    "drift_share": 0.8,
    "drift_strength": 3.0,
    "seed": 0,
}
"""The planted-drift stream: 2,000 users and 1,000 items from the start (no growing population,
so new items before the drift are only the popularity tail's), then at 60% a block of 200 new
items takes 80% of the events, their preference a random ReLU network of 256 units of the
pair's factors (the generator's docstring says why that needs capacity)."""
QUICK_DRIFT: dict[str, Any] = {
    **DRIFT, "n_events": 6_000, "n_users": 200, "n_items": 100, "drift_items": 30,
}  # fmt: skip
CONTROLLERS = ("adaptive", "adaptive_leanrec")
"""The controllers whose own ``λ`` grid is swept (``paper`` and ``leanrec`` presets); each is
judged on goals 1, 2 and 4."""
VARIANTS = ("adaptive_a2c", "adaptive_leanrec_freeze", "adaptive_leanrec_ewc")
"""Variants run at their preset's headline ``λ`` only (one row per seed)."""
GRIDS = {"adaptive": "lambda_grid", "adaptive_leanrec": "leanrec_lambda_grid"}
"""The experiment setting that holds each controller's ``λ`` grid."""
BASELINES = tuple(m for m in DEFAULT_METHODS if m not in CONTROLLERS + VARIANTS)
PRESETS = {
    "adaptive": "paper",
    "adaptive_a2c": "paper",
    "adaptive_leanrec": "leanrec",
    "adaptive_leanrec_freeze": "leanrec",
    "adaptive_leanrec_ewc": "leanrec",
}
LABELS = {
    "fixed_small": "fixed small (64-32)",
    "fixed_medium": "fixed medium (200-80)",
    "fixed_large": "fixed large (512-256-128)",
    "always_grow": "always grow",
    "retrain_medium": "retrain medium",
    "loss_threshold": "loss threshold",
    "adaptive": "adaptive, paper preset (REINFORCE)",
    "adaptive_a2c": "adaptive, paper preset, actor-critic",
    "adaptive_leanrec": "adaptive, leanrec preset",
    "adaptive_leanrec_freeze": "adaptive, leanrec, freeze old units",
    "adaptive_leanrec_ewc": "adaptive, leanrec, EWC",
}
GOAL1_AUC_GAP = 0.005
"""Goal 1: relative AUC gap to fixed-large at most this."""
GOAL1_PARAMETERS = 0.5
"""Goal 1: at most this share of fixed-large's mean tower parameters."""
WINDOW = 3
"""Goal 4: sessions on each side of a boundary."""
SMALL_TOWER: tuple[int, ...] = (64, 32)
LARGE_TOWER: tuple[int, ...] = (512, 256, 128)


# ---------------------------------------------------------------------------------- running
def drift_stream(quick: bool = False) -> EventStream:
    """The planted-drift stream (:data:`DRIFT`; ``quick``: 6,000 events, :data:`QUICK_DRIFT`)."""
    return make_synthetic_stream(**(QUICK_DRIFT if quick else DRIFT), name=DRIFT_DATASET)


def drift_start(quick: bool = False) -> int:
    """Index of the first event after which drifted events may occur."""
    spec = QUICK_DRIFT if quick else DRIFT
    return math.floor(spec["drift_at"] * spec["n_events"])


def experiment_for(
    dataset: str,
    out_dir: Path,
    seeds: Sequence[int],
    quick: bool,
    methods: Sequence[str] | None = None,
    sweep: bool = True,
) -> AdaptiveExperiment:
    """The experiment on one dataset: the package's defaults (20 sessions, a warm-up of 20% in
    eight sessions, chunks of 1,000, ``λ`` grid 0 / 0.02 / 0.1 / 0.5, sweep on), one thread;
    ``methods``: run only these (their rows beside rows of other roots, ``--merge``)."""
    options: dict[str, Any] = {
        "dataset": dataset,
        "data_dir": str(data_dir()),
        "out_dir": str(out_dir),
        "seeds": tuple(seeds),
        "num_threads": 1,
        "log_every": 5,
    }
    if dataset == NEUMF_DATASET:
        options.update(dataset=DRIFT_DATASET, model="neumf", methods=NEUMF_METHODS, sweep=False)
    if methods:
        options["methods"] = tuple(methods)
    if not sweep:
        options["sweep"] = False
    if quick:  # eight sessions after a three-session warm-up, two values of λ per preset
        options.update(sessions=8, warmup_sessions=3, chunk_size=200, lambda_grid=(0.0, 0.5),
                       leanrec_lambda_grid=(0.0, 0.02), log_every=100)  # fmt: skip
    return AdaptiveExperiment(**options)


def run_dataset(
    dataset: str,
    out_dir: Path,
    seeds: Sequence[int],
    quick: bool,
    methods: Sequence[str] | None = None,
    sweep: bool = True,
) -> None:
    """Run (or resume) every method (or ``methods``) and ``λ`` on one dataset (``sweep``
    False: each controller at its headline ``λ`` only; a later run with the sweep adds the
    other ``λ``)."""
    stream = drift_stream(quick) if dataset in DRIFT_DATASETS else None
    run_experiment(experiment_for(dataset, out_dir, seeds, quick, methods, sweep),
                   stream=stream)  # fmt: skip


def read_rows(out_dir: Path) -> list[dict[str, Any]]:
    """Every finished row of a run directory (none before its first row), each marked with
    the directory (``"directory"``: the cost of a row is judged against the fixed-medium row
    that ran beside it, see :func:`summarise_dataset`)."""
    path = out_dir / "rows.json"
    rows = json.loads(path.read_text()) if path.is_file() else []
    return [{**row, "directory": str(out_dir)} for row in rows]


def medium_cpu_by_directory(
    groups: Sequence[list[dict[str, Any]]],
) -> dict[tuple[str, int], float]:
    """Mean CPU seconds per session of each run directory's fixed-medium row, keyed
    ``(directory, seed)``, from every directory's rows before they are merged (a merge keeps
    one fixed-medium row per seed; the others still measure their own directory's machine)."""
    return {
        (row["directory"], row["seed"]): float(np.mean(row["session_cpu_seconds"]))
        for rows in groups for row in rows
        if row["method"] == "fixed_medium" and "directory" in row
    }  # fmt: skip


def merge_rows(groups: Sequence[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """The rows of several run directories of one dataset, one per ``(method, λ, seed)``: the
    first directory's row wins (seeds run in parallel in separate directories)."""
    merged: dict[tuple[str, float | None, int], dict[str, Any]] = {}
    for rows in groups:
        for row in rows:
            merged.setdefault((row["method"], row["penalty"], row["seed"]), row)
    return list(merged.values())


NARROW_TOWERS: tuple[tuple[int, ...], ...] = (
    (16, 16), (32, 16), (48, 16), (64, 32), (200, 80), (512, 256, 128),
)  # fmt: skip
"""Fixed towers of ``--towers``: the three a shrink from fixed-small can reach with the
controller's steps (−16 and −32 per layer, cut to the width limit 16), fixed-small,
fixed-medium and fixed-large."""
NARROW_CONTROLLERS: dict[str, dict[str, Any]] = {
    "leanrec": {},
    "leanrec without its floor": {"floor_widths": None},
    "leanrec with floor 32-16": {"floor_widths": (32, 16)},
}
"""The leanrec preset at its headline ``λ`` in ``--towers``: as it is, with shrinks allowed
down to the width limit (16 per layer), and down to 32-16 (one shrink step below
fixed-small): what its capacity model does below fixed-small, where it measures nothing (its
reference is fixed-medium), and what a pruned tower keeps."""
NARROW_PENALTY = 0.02
"""The leanrec preset's headline ``λ`` (the warm-up rule chose it on every seed and stream)."""
TOWER_PARTS = ("warmup", "stream")


def _tower_name(widths: Sequence[int]) -> str:
    return "-".join(str(w) for w in widths)


def narrow_towers(
    datasets: Sequence[str],
    seeds: Sequence[int],
    root: Path,
    part: str = "warmup",
    towers: Sequence[tuple[int, ...]] = NARROW_TOWERS,
) -> dict[str, Any]:
    """Fixed towers of ``towers`` and the leanrec preset's variants of
    :data:`NARROW_CONTROLLERS`: whether a tower narrower than fixed-small holds its accuracy.

    ``part="warmup"``: over each stream's warm-up sessions alone (the first only learnt, the
    other seven scored, as every method's warm-up), where a controller may learn and be tuned:
    the measurement a change to a preset may rest on. ``part="stream"``: over the whole stream,
    figures of the evaluated sessions (a variant's row beside the benchmark's, choosing
    nothing).

    Each run is cached in ``root/<dataset>/<part>_towers.json`` (a rerun skips what is there).
    Returns flat keys ``<part>_towers|<dataset>|<tower>|…`` (a controller's name in place of a
    tower's): per seed the pooled AUC, the mean tower parameters and the per-session AUCs (and
    a controller's widths per session when they change); over seeds the mean ± sd of the AUC,
    the mean paired difference to 64-32, the sessions (of all seeds) the tower beat 64-32 in
    and lost in, and the line through 64-32 and 512-256-128 (log10 tower parameters, as goal
    2's) at the tower's mean parameters, with the tower's AUC minus it."""
    from leanrec.evaluate.prequential import event_metrics
    from leanrec.runner.final import final_evaluation
    from leanrec.search.adaptive.baselines import AdaptiveController, FixedTower
    from leanrec.search.adaptive.experiment import load_stream
    from leanrec.search.adaptive.session import run_sessions, session_plan
    from leanrec.search.adaptive.tower import reference_parameters

    if part not in TOWER_PARTS:
        raise ValueError(f"part must be one of {TOWER_PARTS}, got {part!r}")
    out: dict[str, Any] = {}
    for dataset in datasets:
        folder = root / dataset
        folder.mkdir(parents=True, exist_ok=True)
        cache = folder / f"{part}_towers.json"
        done: list[dict[str, Any]] = json.loads(cache.read_text()) if cache.is_file() else []
        experiment = experiment_for(dataset, folder, seeds, quick=False)
        stream = drift_stream() if dataset in DRIFT_DATASETS else load_stream(experiment)
        warmup_size = stream.warmup_size(experiment.warmup_fraction)
        events = stream if part == "stream" else stream[0:warmup_size]
        sessions, plan = session_plan(experiment, events, warmup_size,
                                      evaluated=part == "stream")  # fmt: skip
        large = reference_parameters(experiment)
        runs: list[tuple[str, Any, float]] = [
            (_tower_name(w), FixedTower(f"fixed_{_tower_name(w)}", tuple(w)), 0.0) for w in towers
        ]
        runs += [(name, AdaptiveController("adaptive_leanrec", "leanrec", overrides,
                                           penalty_from="adaptive_leanrec"), NARROW_PENALTY)
                 for name, overrides in NARROW_CONTROLLERS.items()]  # fmt: skip
        for (name, method, penalty), seed in itertools.product(runs, seeds):
            if any(r["tower"] == name and r["seed"] == seed for r in done):
                continue
            began = time.perf_counter()
            with final_evaluation():
                result = run_sessions(experiment, events, sessions, plan, method, penalty, seed,
                                      large)  # fmt: skip
            if part == "stream":
                reported = [r for r in result.sessions if not r["warmup"]]
                data = result.record.arrays()
                n = len(stream) - warmup_size
                auc = event_metrics(
                    data["label"][-n:],
                    data["probability"][-n:],
                    data["rating"][-n:],
                    data["rating_prediction"][-n:],
                )["auc"]
            else:
                reported = [r for r in result.sessions if r["auc"] is not None]
                auc = result.record.metrics()["auc"]
            done.append({
                "tower": name, "seed": seed, "auc": auc,
                "parameters": float(np.mean([r["parameters"] for r in reported])),
                "session_auc": [r["auc"] for r in reported],
                "widths": [r["widths"] for r in result.sessions],
                "seconds": time.perf_counter() - began,
            })  # fmt: skip
            cache.write_text(json.dumps(done, indent=1))
            print(f"{dataset} {part}, {name}, seed {seed}: AUC {auc:.5f} "
                  f"({done[-1]['seconds']:.0f} s)")  # fmt: skip
        out.update(summarise_narrow_towers(dataset, done, seeds, f"{part}_towers"))
    return out


def summarise_narrow_towers(
    dataset: str, runs: Sequence[dict[str, Any]], seeds: Sequence[int], stem: str
) -> dict[str, Any]:
    """The flat figures of :func:`narrow_towers` for one dataset from its cached ``runs``
    (``{"tower", "seed", "auc", "parameters", "session_auc"}``), over ``seeds``, keyed
    ``<stem>|<dataset>|…``."""
    out: dict[str, Any] = {}
    by = {(r["tower"], r["seed"]): r for r in runs if r["seed"] in seeds}
    names = list(dict.fromkeys(r["tower"] for r in runs))
    small, large = _tower_name(SMALL_TOWER), _tower_name(LARGE_TOWER)
    means: dict[str, tuple[float, float]] = {}
    for name in names:
        members = [by[(name, s)] for s in seeds if (name, s) in by]
        if len(members) < len(seeds):
            continue
        prefix = _key(stem, dataset, name)
        for member in members:
            out[_key(prefix, f"seed{member['seed']}", "auc")] = member["auc"]
            out[_key(prefix, f"seed{member['seed']}", "session_auc")] = json.dumps(
                member["session_auc"]
            )
            out[_key(prefix, f"seed{member['seed']}", "parameters")] = member["parameters"]
            if "widths" in member and len({tuple(w) for w in member["widths"]}) > 1:
                out[_key(prefix, f"seed{member['seed']}", "widths")] = json.dumps(member["widths"])
        mean, sd = _mean_sd([m["auc"] for m in members])
        assert mean is not None
        out[_key(prefix, "auc_mean")], out[_key(prefix, "auc_sd")] = mean, sd
        parameters = float(np.mean([m["parameters"] for m in members]))
        out[_key(prefix, "parameters")] = parameters
        means[name] = (parameters, mean)
        if all((small, s) in by for s in seeds):
            differences = [m["auc"] - by[(small, m["seed"])]["auc"] for m in members]
            out[_key(prefix, "minus_small_mean")] = float(np.mean(differences))
            out[_key(prefix, "minus_small_by_seed")] = json.dumps(differences)
            won = lost = count = 0
            for member in members:
                for mine, theirs in zip(member["session_auc"],
                                        by[(small, member["seed"])]["session_auc"],
                                        strict=True):  # fmt: skip
                    won += mine > theirs
                    lost += mine < theirs
                    count += 1
            out[_key(prefix, "sessions_won")] = won
            out[_key(prefix, "sessions_lost")] = lost
            out[_key(prefix, "sessions")] = count
    if small in means and large in means:
        for name, point in means.items():
            line = line_auc(means[small], means[large], point[0])
            out[_key(stem, dataset, name, "line_auc")] = line
            out[_key(stem, dataset, name, "minus_line")] = point[1] - line
    out[_key(stem, dataset, "towers")] = ",".join(names)
    return out


# ---------------------------------------------------------------------------------- summary
def _key(*parts: object) -> str:
    return "|".join(str(p) for p in parts)


def _penalty(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def _mean_sd(values: Sequence[float | None]) -> tuple[float | None, float | None]:
    present = np.array([v for v in values if v is not None], dtype=np.float64)
    if len(present) == 0:
        return None, None
    return float(present.mean()), float(present.std(ddof=1)) if len(present) > 1 else 0.0


def _units(session: dict[str, Any]) -> int:
    return int(sum(session["widths"]))


def row_figures(row: dict[str, Any]) -> dict[str, Any]:
    """One row's figures: pooled AUC and log loss over the evaluated events, mean session AUC,
    mean tower parameters and hidden units, mean whole-model bytes, CPU seconds per session."""
    sessions = row["sessions"]
    return {
        "auc": row["total"]["auc"],
        "log_loss": row["total"]["log_loss"],
        "mean_session_auc": row["mean_session_auc"],
        "mean_parameters": row["mean_parameters"],
        "mean_parameter_share": row["mean_parameter_share"],
        "mean_units": float(np.mean([_units(s) for s in sessions])),
        "mean_model_bytes": row["mean_model_bytes"],
        "end_parameters": row["end_parameters"],
        "session_cpu_seconds": float(np.mean(row["session_cpu_seconds"])),
    }


def line_auc(small: tuple[float, float], large: tuple[float, float], parameters: float) -> float:
    """AUC of the line through ``small`` and ``large`` (``(parameters, AUC)`` points) at
    ``parameters``, the line straight in log10 parameters (extended beyond its ends)."""
    x0, x1, x = (math.log10(v) for v in (small[0], large[0], parameters))
    return small[1] + (large[1] - small[1]) * (x - x0) / (x1 - x0)


def dominates(a: tuple[float, float], b: tuple[float, float]) -> bool:
    """Whether ``a`` (``(parameters, AUC)``) dominates ``b``: no more parameters, no lower AUC,
    and strictly better in one of the two."""
    return a[0] <= b[0] and a[1] >= b[1] and (a[0] < b[0] or a[1] > b[1])


def growth(units: Sequence[float], boundary: int, window: int = WINDOW) -> float | None:
    """Mean of ``units`` over ``boundary .. boundary + window - 1`` minus its mean over
    ``boundary - window .. boundary - 1`` (None without ``window`` sessions on each side)."""
    if boundary < window or boundary + window > len(units):
        return None
    return float(np.mean(units[boundary : boundary + window]) -
                 np.mean(units[boundary - window : boundary]))  # fmt: skip


def drift_session(sessions: Sequence[dict[str, Any]], start: int) -> int:
    """Position (among the evaluated sessions) of the first session with events at or after
    ``start`` (the drift's first possible event)."""
    for position, session in enumerate(sessions):
        if session["stop"] > start:
            return position
    raise ValueError(f"no evaluated session reaches event {start}")


def summarise_dataset(
    dataset: str,
    rows: list[dict[str, Any]],
    seeds: Sequence[int],
    grids: dict[str, Sequence[float]],
    drift_at_event: int | None = None,
    methods: Sequence[str] = DEFAULT_METHODS,
    sweep: bool = True,
    medium_cpu: dict[tuple[str, int], float] | None = None,
) -> dict[str, Any]:
    """The flat results of one dataset: every row (figures and per-session series), mean ± sd
    per method at its chosen ``λ`` and per ``λ`` of the sweep, the goals, and which of the
    expected rows (every baseline and every ``λ`` on every seed of ``seeds``) are missing.
    Means and goals read the complete seeds only (``<dataset>|seeds``: every expected row
    there), so that no comparison mixes seeds; a partial seed's rows are listed alone.

    ``cpu_vs_medium``: a row's CPU seconds per session over those of the fixed-medium row of
    the same seed *in the same run directory* (``medium_cpu``, keyed ``(directory, seed)``;
    rows carry their ``"directory"``), else over the seed's fixed-medium row in ``rows``. Rows
    assembled from runs made under different loads of a shared machine are each compared with
    a reference that ran under the same load."""
    out: dict[str, Any] = {}
    by_chosen: dict[str, list[dict[str, Any]]] = {}
    by_penalty: dict[tuple[str, float], list[dict[str, Any]]] = {}
    present = {(r["method"], r["penalty"], r["seed"]) for r in rows}
    run_methods = {r["method"] for r in rows}
    baselines = [m for m in BASELINES if m in methods]
    expected: list[tuple[str, float | None, int]] = [(m, None, s) for s in seeds
                                                     for m in baselines]  # fmt: skip
    if sweep:
        for method, grid in grids.items():
            expected += [(method, p, s) for s in seeds for p in grid]
    single = VARIANTS if sweep else CONTROLLERS + VARIANTS
    variants = [m for m in single if m in run_methods or m in methods]
    missing = [e for e in expected if e not in present]
    for method in variants:  # one row per seed, at the preset's headline λ
        done = {r["seed"] for r in rows if r["method"] == method}
        missing += [(method, None, s) for s in seeds if s not in done]
    complete = {s for s in seeds if not any(e[2] == s for e in missing)}
    for row in sorted(rows, key=lambda r: (r["method"], r["penalty"] or 0.0, r["seed"])):
        method, penalty, seed = row["method"], row["penalty"], row["seed"]
        prefix = _key(dataset, method, _penalty(penalty), f"seed{seed}")
        figures = row_figures(row)
        row["_figures"] = figures
        out.update({_key(prefix, name): value for name, value in figures.items()})
        out[_key(prefix, "chosen")] = bool(row["chosen"])
        out[_key(prefix, "seconds")] = round(row["seconds"], 1)
        sessions = row["sessions"]
        series = {
            "session_auc": [s["auc"] for s in sessions],
            "session_log_loss": [s["log_loss"] for s in sessions],
            "session_parameters": [s["parameters"] for s in sessions],
            "session_model_bytes": [s["model_bytes"] for s in sessions],
            "session_widths": [s["widths"] for s in [*row["warmup_sessions"], *sessions]],
            "session_cpu_seconds": row["session_cpu_seconds"],
        }
        for name, values in series.items():
            out[_key(prefix, name)] = json.dumps(values)
        out[_key(prefix, "warmup_sessions")] = len(row["warmup_sessions"])
        if seed not in complete:  # listed above, left out of the means and the goals
            continue
        if row["chosen"]:
            by_chosen.setdefault(method, []).append(row)
        if method in CONTROLLERS and penalty is not None:
            by_penalty.setdefault((method, penalty), []).append(row)

    def aggregate(prefix: str, members: list[dict[str, Any]]) -> None:
        members = sorted(members, key=lambda m: m["seed"])
        for name in members[0]["_figures"]:
            mean, sd = _mean_sd([m["_figures"][name] for m in members])
            out[_key(prefix, f"{name}_mean")] = mean
            out[_key(prefix, f"{name}_sd")] = sd
        out[_key(prefix, "seeds")] = ",".join(str(m["seed"]) for m in members)
        for series in ("session_auc", "session_parameters"):
            field = "auc" if series == "session_auc" else "parameters"
            stacked = np.array(
                [[np.nan if s[field] is None else s[field] for s in m["sessions"]]
                 for m in members], dtype=np.float64,
            )  # fmt: skip
            out[_key(prefix, f"{series}_mean")] = json.dumps(
                [None if np.isnan(v) else float(v) for v in np.nanmean(stacked, axis=0)]
            )

    medium = {m["seed"]: m["_figures"]["session_cpu_seconds"]
              for m in by_chosen.get("fixed_medium", [])}  # fmt: skip
    for method, members in by_chosen.items():
        prefix = _key(dataset, method, "chosen")
        aggregate(prefix, members)
        cost = []
        for m in members:
            reference = (medium_cpu or {}).get((m.get("directory", ""), m["seed"]))
            reference = reference or medium.get(m["seed"])
            if reference:
                cost.append(m["_figures"]["session_cpu_seconds"] / reference)
        mean, sd = _mean_sd(cost)
        out[_key(prefix, "cpu_vs_medium_mean")], out[_key(prefix, "cpu_vs_medium_sd")] = mean, sd
        if method in PRESETS:
            out[_key(prefix, "penalties")] = " / ".join(
                _penalty(m["penalty"]) for m in sorted(members, key=lambda m: m["seed"])
            )
    for (method, penalty), members in by_penalty.items():
        aggregate(_key(dataset, method, _penalty(penalty)), members)
    out[_key(dataset, "rows_expected")] = len(expected)
    out[_key(dataset, "rows_present")] = len(expected) - len(missing)
    out[_key(dataset, "partial")] = bool(missing)
    out[_key(dataset, "missing")] = "; ".join(f"{m} λ={_penalty(p)} seed {s}"
                                              for m, p, s in missing)  # fmt: skip
    out[_key(dataset, "seeds")] = ",".join(str(s) for s in sorted(complete))
    out[_key(dataset, "seeds_with_rows")] = ",".join(
        str(s) for s in sorted({r["seed"] for r in rows})
    )
    out[_key(dataset, "methods")] = ",".join(m for m in DEFAULT_METHODS if m in by_chosen)
    out.update(goals(dataset, out, by_chosen, drift_at_event))
    out.update(capacity_signal(dataset, by_chosen))
    return out


def _correlation(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Pearson's correlation of paired values (None with fewer than three pairs or a constant
    side)."""
    a, b = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if len(a) < 3 or a.std() == 0 or b.std() == 0:
        return None
    return float(np.corrcoef(a, b)[0, 1])


def capacity_signal(dataset: str, by_chosen: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Whether a larger fixed tower's advantage over fixed-small can be told in advance
    (keys ``<dataset>|capacity|<larger>|<part>|…``, ``part`` ``warmup`` (the scored warm-up
    sessions, the only ones a controller may learn from) or ``evaluated``).

    Per session ``d = AUC(larger) − AUC(fixed small)``, paired by seed: ``mean`` (mean over
    seeds of each seed's mean ``d``), ``won`` of ``sessions`` (``d > 0``), ``lag1`` (the
    correlation of ``d`` with the next session's ``d`` of the same seed, pooled over seeds:
    whether the last measurement predicts the next) and ``first_chunk`` (the correlation of
    ``d`` with the same difference on the session's first chunk, the part scored before a
    decision is applied). A controller that sizes the tower from what it has seen can only
    beat fixed small where ``d`` is positive on average or predictable."""
    out: dict[str, Any] = {}
    small = {m["seed"]: m for m in by_chosen.get("fixed_small", [])}
    for larger in ("fixed_medium", "fixed_large"):
        members = {m["seed"]: m for m in by_chosen.get(larger, [])}
        seeds = sorted(set(small) & set(members))
        for part, field in (("warmup", "warmup_sessions"), ("evaluated", "sessions")):
            means, won, count = [], 0, 0
            previous, following, first, whole = [], [], [], []
            for seed in seeds:
                differences: list[float | None] = []
                for a, b in zip(small[seed][field], members[seed][field], strict=True):
                    if a.get("auc") is None or b.get("auc") is None:
                        differences.append(None)
                        continue
                    difference = b["auc"] - a["auc"]
                    differences.append(difference)
                    first_a = (a.get("observation") or {}).get("first_auc")
                    first_b = (b.get("observation") or {}).get("first_auc")
                    if first_a is not None and first_b is not None:
                        first.append(first_b - first_a)
                        whole.append(difference)
                present = [d for d in differences if d is not None]
                if not present:
                    continue
                means.append(float(np.mean(present)))
                won += sum(d > 0 for d in present)
                count += len(present)
                for now, after in itertools.pairwise(differences):
                    if now is not None and after is not None:
                        previous.append(now)
                        following.append(after)
            if not means:
                continue
            prefix = _key(dataset, "capacity", larger, part)
            out[_key(prefix, "mean")] = float(np.mean(means))
            out[_key(prefix, "won")] = won
            out[_key(prefix, "sessions")] = count
            out[_key(prefix, "lag1")] = _correlation(previous, following)
            out[_key(prefix, "first_chunk")] = _correlation(first, whole)
    return out


def _point(flat: dict[str, Any], dataset: str, method: str) -> tuple[float, float] | None:
    stem = _key(dataset, method, "chosen")
    parameters, auc = flat.get(f"{stem}|mean_parameters_mean"), flat.get(f"{stem}|auc_mean")
    if parameters is None or auc is None:
        return None
    return float(parameters), float(auc)


def goals(
    dataset: str,
    flat: dict[str, Any],
    by_chosen: dict[str, list[dict[str, Any]]],
    drift_at_event: int | None,
) -> dict[str, Any]:
    """Goals 1, 2 and (with ``drift_at_event``) 4 of the module docstring for each controller
    of :data:`CONTROLLERS` (keys ``<dataset>|goal|<controller>|<goal>_…``), from the means over
    seeds (``flat``) and the rows (``by_chosen``)."""
    out: dict[str, Any] = {}
    large, small = (_point(flat, dataset, m) for m in ("fixed_large", "fixed_small"))
    for controller in CONTROLLERS:
        prefix = _key(dataset, "goal", controller)
        adaptive = _point(flat, dataset, controller)
        if adaptive is not None and large is not None:
            gap = 1.0 - adaptive[1] / large[1]
            ratio = adaptive[0] / large[0]
            out[_key(prefix, "1_relative_auc_gap")] = gap
            out[_key(prefix, "1_parameter_ratio")] = ratio
            large_bytes = flat[_key(dataset, "fixed_large", "chosen", "mean_model_bytes_mean")]
            out[_key(prefix, "1_model_bytes_ratio")] = (
                flat[_key(dataset, controller, "chosen", "mean_model_bytes_mean")] / large_bytes
            )
            out[_key(prefix, "1_met")] = bool(gap <= GOAL1_AUC_GAP and ratio <= GOAL1_PARAMETERS)
        if adaptive is not None and large is not None and small is not None:
            line = line_auc(small, large, adaptive[0])
            out[_key(prefix, "2_line_auc")] = line
            out[_key(prefix, "2_above_line")] = bool(adaptive[1] > line)
            met = adaptive[1] > line
            for other in ("always_grow", "loss_threshold"):
                point = _point(flat, dataset, other)
                if point is None:
                    met = False
                    continue
                out[_key(prefix, f"2_dominates_{other}")] = dominates(adaptive, point)
                met = met and dominates(adaptive, point)
            out[_key(prefix, "2_met")] = bool(met)
    for controller, other in zip(CONTROLLERS, CONTROLLERS[::-1], strict=True):
        # beside goal 2: whether one preset's point dominates the other's (not part of it)
        mine, theirs = _point(flat, dataset, controller), _point(flat, dataset, other)
        if mine is not None and theirs is not None:
            out[_key(dataset, "goal", controller, "2_dominates_other_preset")] = dominates(
                mine, theirs
            )
    if drift_at_event is not None:
        out.update(_drift_goal(dataset, by_chosen, drift_at_event))
    return out


def _drift_goal(
    dataset: str, by_chosen: dict[str, list[dict[str, Any]]], drift_at_event: int
) -> dict[str, Any]:
    """Goal 4 per method that changes its tower, and the capacity check (fixed-large minus
    fixed-small in mean session AUC before and from the drift session)."""
    out: dict[str, Any] = {}
    prefix = _key(dataset, "goal")
    for method in (*CONTROLLERS, *VARIANTS, "loss_threshold", "always_grow"):
        members = sorted(by_chosen.get(method, []), key=lambda m: m["seed"])
        if not members:
            continue
        at, placebo = [], []
        for member in members:
            sessions = member["sessions"]
            boundary = drift_session(sessions, drift_at_event)
            units = [float(_units(s)) for s in sessions]
            at_drift = growth(units, boundary)
            others = [growth(units, b) for b in range(len(units)) if b != boundary]
            others_present = [g for g in others if g is not None]
            if at_drift is None or not others_present:
                continue
            at.append(at_drift)
            placebo.append(float(np.mean(others_present)))
            out[_key(prefix, "4", method, f"seed{member['seed']}", "growth")] = at_drift
            out[_key(prefix, "4", method, f"seed{member['seed']}", "growth_elsewhere")] = placebo[
                -1
            ]
            out[_key(prefix, "4", method, "drift_session")] = boundary
        if not at:
            continue
        mean_at, mean_placebo = float(np.mean(at)), float(np.mean(placebo))
        out[_key(prefix, "4", method, "growth")] = mean_at
        out[_key(prefix, "4", method, "growth_elsewhere")] = mean_placebo
        out[_key(prefix, "4", method, "grows_at_drift")] = bool(
            mean_at > 0 and mean_at > mean_placebo
        )
        out[_key(prefix, "4", method, "grows_at_drift_every_seed")] = all(
            a > 0 and a > p for a, p in zip(at, placebo, strict=True)
        )
        if method in CONTROLLERS:
            out[_key(prefix, method, "4_met")] = out[_key(prefix, "4", method, "grows_at_drift")]
    small = {m["seed"]: m for m in by_chosen.get("fixed_small", [])}
    large = {m["seed"]: m for m in by_chosen.get("fixed_large", [])}
    before, after, window_before, window_after = [], [], [], []
    for seed in sorted(set(small) & set(large)):
        aucs = [
            np.array([np.nan if s["auc"] is None else s["auc"] for s in row["sessions"]])
            for row in (large[seed], small[seed])
        ]
        difference = aucs[0] - aucs[1]
        boundary = drift_session(large[seed]["sessions"], drift_at_event)
        before.append(float(np.nanmean(difference[:boundary])))
        after.append(float(np.nanmean(difference[boundary:])))
        window_before.append(float(np.nanmean(difference[max(0, boundary - WINDOW) : boundary])))
        window_after.append(float(np.nanmean(difference[boundary : boundary + WINDOW])))
    if before:
        out[_key(prefix, "4_large_minus_small_before")] = float(np.mean(before))
        out[_key(prefix, "4_large_minus_small_after")] = float(np.mean(after))
        out[_key(prefix, "4_large_minus_small_3_before")] = float(np.mean(window_before))
        out[_key(prefix, "4_large_minus_small_3_after")] = float(np.mean(window_after))
    return out


# ---------------------------------------------------------------------------------- plots
def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _methods(flat: dict[str, Any], dataset: str) -> list[str]:
    listed = flat.get(_key(dataset, "methods"), "")
    return [m for m in str(listed).split(",") if m]


def plot_plane(flat: dict[str, Any], datasets: Sequence[str], path: Path) -> None:
    """AUC against mean tower parameters: every method at its chosen ``λ`` (sd bars over seeds),
    the adaptive ``λ`` sweep, and the line through fixed-small and fixed-large."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(datasets), figsize=(6.5 * len(datasets), 4.8), squeeze=False)
    for col, dataset in enumerate(datasets):
        axis = axes[0, col]
        for method in _methods(flat, dataset):
            stem = _key(dataset, method, "chosen")
            axis.errorbar(
                flat[f"{stem}|mean_parameters_mean"], flat[f"{stem}|auc_mean"],
                xerr=flat[f"{stem}|mean_parameters_sd"], yerr=flat[f"{stem}|auc_sd"],
                marker="*" if method in CONTROLLERS else "o",
                ms=11 if method in CONTROLLERS else 6,
                capsize=3, ls="none", label=LABELS[method],
            )  # fmt: skip
        for controller, style in zip(CONTROLLERS, ("k:", "b:"), strict=True):
            sweep = sorted(
                (flat[k.replace("|auc_mean", "|mean_parameters_mean")], flat[k],
                 k.split("|")[2])
                for k in flat
                if k.startswith(_key(dataset, controller, "")) and k.endswith("|auc_mean")
                and k.split("|")[2] not in ("chosen", "-") and k.count("|") == 3
            )  # fmt: skip
            if not sweep:
                continue
            axis.plot([p[0] for p in sweep], [p[1] for p in sweep], style, lw=1,
                      label=f"{PRESETS[controller]} preset, λ sweep")  # fmt: skip
            for x, y, penalty in sweep:
                axis.annotate(f"λ={penalty}", (x, y), fontsize=7, xytext=(3, -9),
                              textcoords="offset points")  # fmt: skip
        small, large = _point(flat, dataset, "fixed_small"), _point(flat, dataset, "fixed_large")
        if small is not None and large is not None:
            axis.plot([small[0], large[0]], [small[1], large[1]], "--", color="grey", lw=0.8,
                      label="line small-large")  # fmt: skip
        axis.set_xscale("log")
        axis.set_xlabel("mean tower parameters over the evaluated sessions")
        axis.set_ylabel("prequential AUC")
        partial = " (partial)" if flat.get(_key(dataset, "partial")) else ""
        axis.set_title(f"{dataset}: seeds {flat.get(_key(dataset, 'seeds'))}{partial}")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_sessions(
    flat: dict[str, Any], datasets: Sequence[str], path: Path, drift: dict[str, int]
) -> None:
    """Per evaluated session: AUC and tower parameters of every method (mean over seeds)."""
    plt = _pyplot()
    fig, axes = plt.subplots(len(datasets), 2, figsize=(13, 4.2 * len(datasets)), squeeze=False)
    for row, dataset in enumerate(datasets):
        for method in _methods(flat, dataset):
            stem = _key(dataset, method, "chosen")
            for col, series in enumerate(("session_auc_mean", "session_parameters_mean")):
                values = [np.nan if v is None else v for v in json.loads(flat[f"{stem}|{series}"])]
                axes[row, col].plot(range(len(values)), values, marker=".", lw=1,
                                    label=LABELS[method])  # fmt: skip
        for col, label in enumerate(("session AUC (mean over seeds)", "tower parameters")):
            axis = axes[row, col]
            if dataset in drift:
                axis.axvline(drift[dataset] - 0.5, color="red", lw=0.8, ls="--")
            axis.set_xlabel("evaluated session" + (" (red: the drift)" if dataset in drift
                                                   else ""))  # fmt: skip
            axis.set_ylabel(label)
            axis.set_title(dataset)
            axis.grid(alpha=0.3)
        axes[row, 1].set_yscale("log")
        axes[row, 0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_choices(
    flat: dict[str, Any], datasets: Sequence[str], path: Path, drift: dict[str, int]
) -> None:
    """The controllers' towers at their chosen ``λ``: widths per layer per session of the first
    seed (warm-up included) for the paper and the leanrec preset, and hidden units per session
    of every seed of both and of the loss-threshold rule's first seed."""
    plt = _pyplot()
    fig, axes = plt.subplots(len(datasets), 3, figsize=(18, 4.0 * len(datasets)), squeeze=False)
    for row, dataset in enumerate(datasets):
        for col, controller in enumerate(CONTROLLERS):
            keys = sorted(k for k in flat if k.startswith(_key(dataset, controller, ""))
                          and k.endswith("|chosen") and flat[k] is True)  # fmt: skip
            for index, key in enumerate(keys):
                stem = key.rsplit("|", 1)[0]
                widths = json.loads(flat[f"{stem}|session_widths"])
                warm = int(flat[f"{stem}|warmup_sessions"])
                x = np.arange(len(widths)) - warm
                _, _, penalty, seed = stem.split("|")
                if index == 0:
                    for layer in range(3):
                        axes[row, col].step(x, [w[layer] if layer < len(w) else 0 for w in widths],
                                            where="post", label=f"layer {layer + 1}")  # fmt: skip
                    axes[row, col].set_title(f"{dataset}: {PRESETS[controller]} preset at "
                                             f"λ={penalty}, {seed}")  # fmt: skip
                axes[row, 2].step(x, [sum(w) for w in widths], where="post",
                                  ls="-" if controller == "adaptive_leanrec" else "--",
                                  label=f"{PRESETS[controller]} {seed}, λ={penalty}")  # fmt: skip
        for key in sorted(k for k in flat if k.startswith(_key(dataset, "loss_threshold", ""))
                          and k.endswith("|session_widths"))[:1]:  # fmt: skip
            widths = json.loads(flat[key])
            warm = int(flat[key.replace("|session_widths", "|warmup_sessions")])
            axes[row, 2].step(np.arange(len(widths)) - warm, [sum(w) for w in widths],
                              where="post", color="grey", ls=":",
                              label="loss threshold (first seed)")  # fmt: skip
        labels = ("width (0: no layer)", "width (0: no layer)", "hidden units (sum of widths)")
        for col, label in enumerate(labels):
            axis = axes[row, col]
            axis.axvline(-0.5, color="grey", lw=0.8)
            if dataset in drift:
                axis.axvline(drift[dataset] - 0.5, color="red", lw=0.8, ls="--")
            axis.set_xlabel("session (negative: warm-up" + ("; red: the drift)" if dataset in drift
                                                            else ")"))  # fmt: skip
            axis.set_ylabel(label)
            axis.grid(alpha=0.3)
            if axis.get_legend_handles_labels()[1]:  # a panel may have no labelled line
                axis.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ---------------------------------------------------------------------------------- main
def print_narrow_towers(flat: dict[str, Any], datasets: Sequence[str], part: str) -> None:
    """One table per stream of :func:`narrow_towers`' figures."""
    stem = f"{part}_towers"
    for dataset in datasets:
        names = str(flat.get(_key(stem, dataset, "towers"), "")).split(",")
        lines = []
        for name in [n for n in names if n]:
            prefix = _key(stem, dataset, name)
            if f"{prefix}|auc_mean" not in flat:
                continue
            lines.append([
                name, f"{flat[f'{prefix}|parameters']:,.0f}",
                f"{flat[f'{prefix}|auc_mean']:.5f} ± {flat[f'{prefix}|auc_sd']:.5f}",
                f"{flat.get(f'{prefix}|minus_small_mean', math.nan):+.5f}",
                f"{flat.get(f'{prefix}|sessions_won', '-')} / "
                f"{flat.get(f'{prefix}|sessions_lost', '-')} / "
                f"{flat.get(f'{prefix}|sessions', '-')}",
                f"{flat.get(f'{prefix}|minus_line', math.nan):+.5f}",
            ])  # fmt: skip
        print(f"\n{dataset}: {'warm-up' if part == 'warmup' else 'evaluated'} sessions")
        print_table(["tower", "mean parameters", "AUC", "minus 64-32",
                     "sessions won / lost vs 64-32", "minus the line 64-32 to 512-256-128"],
                    lines)  # fmt: skip


def _print(flat: dict[str, Any], dataset: str) -> None:
    lines = []
    for method in _methods(flat, dataset):
        stem = _key(dataset, method, "chosen")
        lines.append([
            LABELS[method], flat.get(f"{stem}|penalties", "-"), flat[f"{stem}|auc_mean"],
            flat[f"{stem}|log_loss_mean"], f"{flat[f'{stem}|mean_parameters_mean']:,.0f}",
            f"{flat[f'{stem}|mean_model_bytes_mean']:,.0f}", flat[f"{stem}|seeds"],
        ])  # fmt: skip
    partial = " (partial: " + flat[_key(dataset, "missing")] + ")" if flat[
        _key(dataset, "partial")] else ""  # fmt: skip
    print(f"\n{dataset}{partial}")
    print_table(["method", "λ", "AUC", "log loss", "tower parameters", "model bytes", "seeds"],
                lines)  # fmt: skip
    for controller in CONTROLLERS:
        prefix = _key(dataset, "goal", controller)
        print(f"{PRESETS[controller]} preset: " + ", ".join(
            f"goal {g}: {flat[f'{prefix}|{g}_met']}" for g in (1, 2, 4)
            if f"{prefix}|{g}_met" in flat
        ))  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--dataset", nargs="+", default=list(DATASETS),
                        choices=(*DATASETS, NEUMF_DATASET))  # fmt: skip
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--runs", default=None, help="root of the run directories")
    parser.add_argument("--merge", nargs="*", default=[], metavar="ROOT",
                        help="more roots of run directories whose rows are added (e.g. seeds "
                        "run in parallel; a row already read is kept)")  # fmt: skip
    parser.add_argument("--drop", nargs="+", default=[], choices=DEFAULT_METHODS,
                        metavar="METHOD",
                        help="rows of these methods are read from --runs and --rerun roots "
                        "only, not from the --merge roots (rows an older version of a rerun "
                        "method wrote there)")  # fmt: skip
    parser.add_argument("--rerun", nargs="*", default=[], metavar="ROOT",
                        help="more roots whose rows all count, like --runs (e.g. the seeds of "
                        "a rerun method run in parallel roots)")  # fmt: skip
    parser.add_argument("--methods", nargs="+", default=None, choices=DEFAULT_METHODS,
                        help="run only these methods in this root (e.g. one method rerun after "
                        "a change; the other rows come from the --merge roots, and this "
                        "root's rows win)")  # fmt: skip
    parser.add_argument("--no-sweep", action="store_true",
                        help="run each controller at its headline λ only (a later run "
                        "without it adds the sweep's rows)")  # fmt: skip
    parser.add_argument("--no-run", action="store_true",
                        help="only assemble the results from the run directories")  # fmt: skip
    parser.add_argument("--quick", action="store_true",
                        help="a 6,000-event drift stream, eight sessions (seconds)")  # fmt: skip
    parser.add_argument("--towers", choices=TOWER_PARTS, default=None,
                        help="only run fixed towers (16-16 to 512-256-128) and the leanrec "
                        "preset with and without its floor, on each stream's warm-up sessions "
                        "(warmup) or over the whole stream (stream: figures of the evaluated "
                        "sessions); writes adaptive_stream--<part>-towers.json (runs cached "
                        "under RUNS/<part>-towers/)")  # fmt: skip
    add_tag_argument(parser, SCRIPT)
    args = parser.parse_args(argv)
    stem = SCRIPT if not args.tag else f"{SCRIPT}--{args.tag}"
    root = Path(args.runs) if args.runs else Path("runs") / stem
    if args.towers:
        datasets = [d for d in args.dataset if d != NEUMF_DATASET]
        towers = narrow_towers(datasets, args.seeds, root / f"{args.towers}-towers", args.towers)
        tag = "--".join(t for t in (args.tag, f"{args.towers}-towers") if t)
        print_narrow_towers(towers, datasets, args.towers)
        print(f"\nwrote {write_results(SCRIPT, towers, tag)}")
        return
    datasets = [DRIFT_DATASET] if args.quick else list(args.dataset)
    began = time.perf_counter()
    flat: dict[str, Any] = {
        "quick": args.quick,
        "runs": str(root),
        "drift_stream": json.dumps(QUICK_DRIFT if args.quick else DRIFT, sort_keys=True),
    }
    done, drift = [], {}
    for dataset in datasets:
        out_dir = root / dataset
        if not args.no_run:
            run_dataset(dataset, out_dir, args.seeds, args.quick, args.methods,
                        not args.no_sweep)  # fmt: skip
        current = [out_dir, *(Path(m) / dataset for m in args.rerun)]
        older = [Path(m) / dataset for m in args.merge]
        directories = [d for d in [*current, *older] if (d / "rows.json").is_file()]
        groups = [[r for r in read_rows(d) if d in current or r["method"] not in args.drop]
                  for d in directories]  # fmt: skip
        rows = merge_rows(groups)
        medium_cpu = medium_cpu_by_directory([read_rows(d) for d in directories])
        rerun = {r["method"] for d in current for r in read_rows(d)}
        if not rows:
            print(f"no rows in {out_dir}: {dataset} left out")
            continue
        configs = [json.loads((d / "config.json").read_text()) for d in directories]
        config = configs[0]
        listed = {m for c in configs for m in c.get("methods", DEFAULT_METHODS)}
        # a dropped method not rerun here is not expected (its older rows were left out)
        config["methods"] = [m for m in DEFAULT_METHODS
                             if m in listed and (m not in args.drop or m in rerun)]  # fmt: skip
        at = drift_start(args.quick) if dataset in DRIFT_DATASETS else None
        defaults = AdaptiveExperiment()
        grids = {m: config.get(name, getattr(defaults, name)) for m, name in GRIDS.items()
                 if any(r["method"] == m for r in rows)}  # fmt: skip
        flat.update(summarise_dataset(dataset, rows, args.seeds, grids, at,
                                      config.get("methods", DEFAULT_METHODS),
                                      config.get("sweep", True), medium_cpu))  # fmt: skip
        config.pop("seeds", None)
        flat[_key(dataset, "config")] = json.dumps(config, sort_keys=True, default=str)
        if at is not None:
            first = next(r for r in rows if r["chosen"])
            drift[dataset] = drift_session(first["sessions"], at)
            flat[_key(dataset, "drift_session")] = drift[dataset]
        done.append(dataset)
        _print(flat, dataset)
    if not done:
        raise SystemExit("no rows in any run directory")
    flat["datasets"] = ",".join(done)
    flat["assemble_seconds"] = round(time.perf_counter() - began, 1)
    path = write_results(SCRIPT, flat, args.tag)
    figures = [results_path(SCRIPT, args.tag or None, ".png")]
    plot_plane(flat, done, figures[0])
    for suffix, plot in (("sessions", plot_sessions), ("choices", plot_choices)):
        figure = results_path(SCRIPT, "--".join(t for t in (args.tag, suffix) if t), ".png")
        plot(flat, done, figure, drift)
        figures.append(figure)
    print(f"\nwrote {path}, " + ", ".join(str(f) for f in figures))


if __name__ == "__main__":
    main()
