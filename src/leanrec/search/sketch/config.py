"""Configuration of learned sketching (DiPS, Ghosh, Mitra & Lan, AAAI 2022) and its experiment.

Two presets (:func:`apply_preset`): ``paper``, DiPS as its paper wrote it (the model-free
scorer), and ``leanrec``, the Beauty headline's variant, whose additions are switches of
:data:`LEANREC_ADDITIONS` that turn off alone. Where a default is not the paper's, the
measurement behind it is in ``docs/design/dips-training.md``; what departs from the paper in
either preset is listed there too.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Literal

from leanrec.data.own import DataFile
from leanrec.options import check_literals, check_not_empty, names_as_tuples
from leanrec.search.base import preset_values

DEFAULT_METHODS: tuple[str, ...] = ("random", "hardest", "influence", "recent", "dips", "dips1")
"""The experiment's methods, in the order of the registry
:data:`~leanrec.search.sketch.baselines.METHODS` (static baselines first, then DiPS, DiPS@1)."""


@dataclass
class SketchConfig:
    """Everything a sketching run needs; paper values noted where the paper gives one."""

    sketch_size: int = 4
    """``K``: past interactions a user's sketch keeps (paper: 2, 4, 8)."""
    update_period: int = 1
    """``τ``: the sketch is updated every ``τ`` events; 1 is the online setting (paper: 1, 4)."""
    queue_size: int = 50
    """``Q``: past decisions re-scored with the current policy in the gradient (Eq. 10;
    paper: 50-100). 1 gives DiPS@1 (gradient through the latest decision only)."""
    embedding_dim: int = 32
    """Size of the user vector ``θ(u)`` and of item embeddings in the base NCF model."""
    hidden_dim: int = 32
    """Width of the NCF MLP branch and of the policy network ``f(·; Φ)``."""
    inner_steps: int = 2
    """Gradient steps adapting the user parameters on the sketch (Eq. 7)."""
    inner_learning_rate: float = 0.5
    """``α`` of Eq. 7."""
    learning_rate: float = 1e-3
    """``η``, Adam step size of the outer level (model ``Θ``); 1e-3: the best of 1e-3 to 1e-2 on
    ML-1M validation (docs/design/dips-training.md)."""
    policy_learning_rate: float = 2e-4
    """Adam step size of the policy parameters ``Φ`` (the Eq. 10 surrogate sums ``Q``
    decisions, so it is kept below ``learning_rate``)."""
    queue_policy_learning_rate: float | None = 5e-5
    """Adam step size of ``Φ`` when the gradient runs through a queue (DiPS, ``Q > 1``; None:
    ``policy_learning_rate``); 5e-5: the queue sums ``Q`` decisions' terms, a smaller step than
    DiPS@1's did better on ML-1M (docs/design/dips-training.md)."""
    model_state_features: bool = False
    """Learned policies also read each candidate's loss and first-order influence under the
    current model (what Hardest and Influence rank by), and start as Influence through a
    linear skip. Such a policy needs the base model at inference; off: the model-free policy of
    the paper's transfer setting, which runs as a streaming operator."""
    recency_prior: float = 0.0
    """``β``: learned policies start with ``-β · log(1 + age)`` added to their score (a learned
    weight), so they start between their other inputs and a sliding window."""
    epochs: int = 3
    """Passes over the training users."""
    batch_users: int = 128
    """``n``: users per mini-batch (Algorithm 1, line 3)."""
    max_train_length: int | None = 400
    """Train on at most the first this many events of each user (None: whole streams);
    evaluation always streams whole histories."""
    steps_per_update: int = 4
    """Outer updates are taken every this many time steps, accumulating their losses (1:
    Algorithm 1 exactly, an update per time step)."""
    stochastic_training: bool = False
    """Sample decisions from the policy while training. Off by default: evaluation is greedy,
    and a policy trained on sampled decisions learned to rely on the sampling (greedy, it froze
    the sketch; docs/design/dips-training.md)."""
    standardise_scores: bool = False
    """Standardise each decision's scores (centre, unit spread) before the relaxation in the
    policy gradient: the Eq. 10 surrogate is then invariant to the scores' scale, so the policy
    cannot lower it by sharpening its scores (which shrinks the relaxed gradient), only by
    reordering them. Greedy decisions are the same either way."""
    rating_scale: tuple[float, float] = (1.0, 5.0)
    """Explicit ratings are clipped to this range when predicted."""
    item_bias_shrinkage: float | None = 5.0
    """Item biases start from the training events' shrunk mean offsets (explicit) or log
    popularity (implicit), shrunk by 5 pseudo-events; None starts them at 0. Training streams
    may be cut at ``max_train_length`` while evaluation streams whole histories, so this also
    gives the model the items it would otherwise never see rated."""
    sampled_items: int = 1024
    """Implicit feedback: items sampled (shared per step) for the training softmax."""
    eval_batch_users: int = 512
    """Users streamed together at evaluation."""
    seed: int = 0
    """Seeds initialisation, batches and stochastic decisions."""
    num_threads: int = 1
    """torch intra-op threads (0: leave torch's default)."""
    progress: bool | None = None
    """Show a progress bar (None: only when stderr is a terminal)."""
    preset: str | None = None
    """The preset the fields were set from (:func:`apply_preset`: ``paper`` or ``leanrec``),
    recorded in ``config.json``; None: the fields as given. What the fields amount to is
    :func:`preset_label`, which ``results.json`` carries."""

    def __post_init__(self) -> None:
        if self.preset is not None and self.preset not in PRESETS:
            raise ValueError(f"unknown preset {self.preset!r}; choose from {sorted(PRESETS)}")
        if self.sketch_size < 1:
            raise ValueError(f"sketch_size K must be >= 1, got {self.sketch_size}")
        if self.update_period < 1:
            raise ValueError(f"update_period τ must be >= 1, got {self.update_period}")
        if self.queue_size < 1:
            raise ValueError(f"queue_size Q must be >= 1, got {self.queue_size}")
        at_least_one = (
            "epochs", "batch_users", "eval_batch_users", "embedding_dim", "hidden_dim",
            "steps_per_update", "sampled_items",
        )  # fmt: skip
        for name in at_least_one:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.num_threads < 0:
            raise ValueError(
                f"num_threads must be >= 0 (0: torch's default), got {self.num_threads}"
            )
        low, high = self.rating_scale
        if not (math.isfinite(low) and math.isfinite(high) and low < high):
            raise ValueError(
                f"rating_scale must be (lowest, highest) rating with lowest < highest, got "
                f"{tuple(self.rating_scale)}"
            )
        rates = ("learning_rate", "policy_learning_rate", "inner_learning_rate",
                 "queue_policy_learning_rate")  # fmt: skip
        for name in rates:
            value = getattr(self, name)
            if value is not None and not value >= 0:  # 0 freezes that level (a probe)
                raise ValueError(f"{name} must be at least 0, got {value}")
        if self.inner_steps < 0:
            raise ValueError(f"inner_steps must be >= 0, got {self.inner_steps}")
        if self.max_train_length is not None and self.max_train_length < 1:
            raise ValueError(
                f"max_train_length must be >= 1 (None: all), got {self.max_train_length}"
            )


@dataclass
class SketchExperiment:
    """One paper-style table (DiPS Tables 2-3): every method x ``K`` x ``τ``, one user split and
    initialisation per seed, mean ± std over the seeds."""

    dataset: str | DataFile = "ml-1m"
    """Registry dataset with time order (``ml-1m`` reads the timestamped ``ml-1m-partial``);
    ml-1m: the paper's explicit-feedback table. Or a file of one's own with time order
    (:class:`~leanrec.data.own.DataFile`)."""
    data_dir: str | None = None
    """Where the datasets are (None: the registry's default data directory)."""
    out_dir: str = "runs/sketch-ml-1m"
    """The run directory (an existing one is resumed)."""
    methods: tuple[str, ...] = DEFAULT_METHODS
    """Table columns, names of :data:`~leanrec.search.sketch.baselines.METHODS`; default: all."""
    sketch_sizes: tuple[int, ...] = (2, 4, 8)
    """``K`` values; (2, 4, 8): the paper's."""
    update_periods: tuple[int, ...] = (1, 4)
    """``τ`` values; (1, 4): the paper's online and batch settings."""
    seeds: tuple[int, ...] = (0, 1, 2)
    """User splits (and initialisations), one per seed; 3 (the paper: 5) to bound the cost."""
    split_ratios: tuple[float, float, float] = (0.6, 0.2, 0.2)
    """Train / validation / test shares of the users; 60/20/20: the paper's."""
    min_length: int = 2
    """Users with fewer events are left out; 2: one to sketch, one to predict."""
    config: SketchConfig = field(default_factory=SketchConfig)
    """The training configuration of every cell (``K``, ``τ`` and the seed are set per cell)."""
    executor: Literal["serial", "ray"] = "serial"
    """Where the cells run (``leanrec.runner.search_executor``): ``"serial"``, one after
    another in this process, or ``"ray"``, one Ray task per cell (the ``ray`` extra; the
    cluster of ``RAY_ADDRESS``, else a local one). The same rows either way."""
    executor_cpus_per_job: float = 1.0
    """CPUs Ray reserves per cell."""

    def __post_init__(self) -> None:
        check_literals(self)
        names_as_tuples(self, "methods")
        check_not_empty(self, "methods", "sketch_sizes", "update_periods", "seeds")
        ratios = self.split_ratios
        if len(ratios) != 3 or not all(0 < r < 1 for r in ratios) or abs(sum(ratios) - 1) > 1e-9:
            raise ValueError(
                f"split_ratios must be three shares of the users in (0, 1) summing to 1 "
                f"(train, validation, test), got {tuple(ratios)}"
            )


# ------------------------------------------------------------------------------ presets
LEANREC_ADDITIONS: dict[str, dict[str, Any]] = {
    "influence_start": {"model_state_features": False},
    "recency_prior": {"recency_prior": 0.0},
}
"""Each of leanrec's additions to the DiPS policy, as the field values that turn it off alone
(the paper's). ``influence_start``: the scorer also reads each candidate's loss and
first-order influence under the current model and starts as the Influence baseline through a
linear skip (the policy then needs its base model at inference); ``recency_prior``: a learned
``-β log(1 + age)`` term added to the score, starting at ``β``."""

PRESETS: dict[str, dict[str, Any]] = {
    "leanrec": {
        "model_state_features": True,
        "recency_prior": 1.0,
        "queue_size": 50,
        "steps_per_update": 1,
    },
}
PRESETS["paper"] = {
    **PRESETS["leanrec"],
    **{name: value for change in LEANREC_ADDITIONS.values() for name, value in change.items()},
}
"""Field values over :class:`SketchConfig` per preset. ``leanrec``: the Beauty headline's policy
(model-state features with the Influence start, ``β = 1``, the value chosen on Beauty's
validation users from {0, 1} cell by cell: on other data choose it the same way with
``benchmarks/paper/sketch_prior_choice.py``), a queue of ``Q = 50``, an outer update at every
time step. ``paper``: the same without either addition: the model-free scorer of the paper
(items, ratings) with no Influence start and no recency prior, ``Q = 50`` and Algorithm 1's
update at every time step. Both keep the step sizes, epochs and batch as given (the data's
settings), and the departures neither preset removes are listed in
``docs/design/dips-training.md``."""


def apply_preset(
    config: SketchConfig, preset: str, without: tuple[str, ...] = (), **overrides: Any
) -> SketchConfig:
    """``config`` with the fields of ``preset`` (:data:`PRESETS`) set over it, then each addition
    named in ``without`` (:data:`LEANREC_ADDITIONS`) turned off, then ``overrides`` (an explicit
    value beats the preset's); every other field is kept.

    Example::

        paper = apply_preset(SketchConfig(learning_rate=5e-3), "paper")
        no_prior = apply_preset(SketchConfig(), "leanrec", without=("recency_prior",))

    Raises:
        ValueError: an unknown preset, addition or field.
    """
    values = preset_values(PRESETS, LEANREC_ADDITIONS, preset, without)
    values.update(overrides)
    return dataclasses.replace(config, **values, preset=preset)


def additions_on(config: SketchConfig) -> list[str]:
    """The additions of :data:`LEANREC_ADDITIONS` whose fields differ from the paper's."""
    return [name for name, change in LEANREC_ADDITIONS.items() if not _holds(config, change)]


def preset_label(config: SketchConfig) -> str:
    """What the fields amount to: ``paper`` or ``leanrec`` when every field of that preset
    holds; ``paper with <field>=<value>`` / ``leanrec with ...`` when a preset's additions
    match but another of its fields was set over it; else ``custom (<additions on>)``.
    Derived from the fields, so a value set over a preset shows. (With two additions,
    ``leanrec`` without one of them is the other one alone: ``custom (recency_prior)``.)"""
    for name, values in PRESETS.items():
        if _holds(config, values):
            return name
    on = additions_on(config)
    for name, wanted in (("paper", []), ("leanrec", list(LEANREC_ADDITIONS))):
        if on == wanted:
            changed = [
                f"{k}={getattr(config, k)!r}"
                for k, v in PRESETS[name].items()
                if getattr(config, k) != v
            ]
            return f"{name} with " + ", ".join(changed)
    return f"custom ({', '.join(on) or 'no additions'})"


def _holds(config: SketchConfig, values: dict[str, Any]) -> bool:
    return all(getattr(config, k) == v for k, v in values.items())
