"""Configuration of the adaptive-architecture controller and of its experiment.

The position paper (Rafailidis & Antaris, "Adaptive Neural Architectures for Recommender
Systems") names the problem, not an algorithm; the controller follows Reinforced Continual
Learning (RCL, Xu & Zhu, NeurIPS 2018): an LSTM that emits one width change per hidden layer
and a depth change, trained by REINFORCE with a learned value baseline, rewarded by accuracy
minus a size penalty. Where RCL is silent or does not fit a stream (it trains tens of children
per task) the default is a choice, given with its reason here and discussed in
``docs/design/adaptive.md``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Literal

from leanrec.data.own import DataFile
from leanrec.options import check_literals, check_not_empty, names_as_tuples
from leanrec.search.streams import default_trainer
from leanrec.train.stream import StreamTrainerConfig

WIDTH_DELTAS: tuple[int, ...] = (-32, -16, 0, 16, 32)
"""Per-layer width changes the controller chooses from (units)."""
DEPTH_DELTAS: tuple[int, ...] = (-1, 0, 1)
"""Depth changes: remove the last hidden layer, keep the depth, add a layer at the end."""

DEFAULT_METHODS: tuple[str, ...] = (
    "fixed_small",
    "fixed_medium",
    "fixed_large",
    "always_grow",
    "retrain_medium",
    "loss_threshold",
    "adaptive",
    "adaptive_a2c",
    "adaptive_leanrec",
    "adaptive_leanrec_freeze",
    "adaptive_leanrec_ewc",
)
"""Every method, in the order of :data:`~leanrec.search.adaptive.baselines.METHODS`."""


@dataclass
class AdaptiveConfig:
    """The controller (RCL-style LSTM policy and value network) and the limits it acts in."""

    hidden_size: int = 32
    """LSTM hidden size (RCL uses 100 for a far larger action space; a dozen state features and
    four decisions need less, and a small controller learns faster from 20-30 sessions)."""
    value_hidden: int = 32
    """Hidden width of the value network ``V(s)`` (one hidden layer: it reads 11 numbers and
    is fitted to a few dozen rewards)."""
    min_width: int = 16
    """Narrowest hidden layer (the smallest width change: a layer is never emptied)."""
    max_width: int = 512
    """Widest hidden layer (fixed-large's first layer: the controller cannot outgrow it)."""
    max_depth: int = 3
    """Most hidden layers (fixed-large's depth)."""
    min_depth: int = 1
    """Fewest hidden layers (at least one non-linear layer above the FM part)."""
    initial_widths: tuple[int, ...] = (200, 80)
    """The tower the controller starts from: DeepFM's default (fixed-medium)."""
    reference: bool = True
    """Train a reference model beside the controlled one: its session AUC is the difficulty
    term of the baseline (False: the first chunk's AUC before the change, far noisier: a
    1,000-event chunk's AUC differs from its session's by ±0.05 on ML-100K)."""
    reference_widths: tuple[int, ...] = (64, 32)
    """The reference model's fixed tower: fixed-small, the cheapest (about 0.9x a fixed-medium
    session), so that a session costs at most about 3x fixed-medium's even when the controlled
    tower is the largest reachable (about 2x)."""
    policy_learning_rate: float = 1e-2
    """Adam step size of the LSTM policy (RCL: 1e-3 over many children per task; one
    decision per session is a few dozen updates in a whole stream, so larger)."""
    value_learning_rate: float = 1e-2
    """Adam step size of the value network."""
    value_steps: int = 20
    """Value-network steps after each session, on every (state, reward) seen so far (cheap:
    a few dozen rows), so the baseline tracks the drifting accuracy level."""
    entropy_bonus: float = 0.01
    """``β``: entropy weight in the policy loss (keeps some exploration over the stream)."""
    keep_prior: float = 2.0
    """Starting logit of "no change" (width 0, depth 0) above the others (0): each decision
    starts by keeping its layer's width with probability ``e²/(e² + 4) ≈ 0.65`` (the depth:
    0.79), so early sessions do not random-walk the tower before anything is learnt."""
    advantage_clip: float = 3.0
    """Advantages are divided by their running standard deviation and clipped to ``±clip``:
    AUC moves by thousandths, so the raw advantage would barely move the policy."""
    penalty: float = 0.02
    """``λ`` of the reward ``R = AUC − λ · p`` (``p``: shaped parameters over fixed-large's).
    The experiment fixes it per seed on the warm-up sessions (``lambda_grid``)."""
    protection: Literal["none", "freeze", "ewc"] = "none"
    """Forgetting protection after a change: ``none`` (plain fine-tuning), ``freeze`` (units
    that existed before the change keep their weights for ``freeze_steps`` steps, at most to
    the session's end), ``ewc`` (penalty ``ewc_strength · Σ F_i (θ_i − θ*_i)²``, Fisher
    ``F`` from the previous session's last chunk)."""
    freeze_steps: int = 200
    """Optimiser steps old units stay frozen under ``freeze`` (a fifth of an ML-1M session)."""
    ewc_strength: float = 100.0
    """``λ_EWC``: the weight of the EWC penalty (squared gradients of a BCE are small)."""
    fisher_events: int = 512
    """Events of the previous session's end on which the EWC Fisher is estimated."""
    algorithm: Literal["reinforce", "actor_critic", "capacity_model"] = "reinforce"
    """How the controller learns and decides. ``reinforce`` (RCL): the LSTM policy, one
    REINFORCE step per session with the baseline ``AUC_ref − λ p₀ + V(s)``.
    ``actor_critic``: the same LSTM actor, advantage ``r + γ V(s') − V(s)`` with ``V`` fitted
    by TD(0) (the learned value as critic; the session's change is credited with what it leaves
    for the next sessions too). ``capacity_model`` (the ``leanrec`` preset): no policy
    gradient; a learned model of the reward, fed by the reference model's comparison every
    session, prices each candidate change (:class:`~leanrec.search.adaptive.capacity.\
CapacityController`)."""
    discount: float = 0.5
    """``γ`` of ``actor_critic``: a session's change still shapes the tower the next sessions
    start from, and a grown unit pays only once it has learnt; 0.5 weighs the next session half
    (a horizon of about two sessions, where the planted drift's benefit of capacity lasts)."""
    capacity_halflife: float = 1.0
    """``capacity_model``: half-life (sessions) of the recency weights of the capacity value's
    measurements (1: the last session weighs as much as all before it; capacity pays where the
    data has just changed, and a long memory would average a drift away)."""
    confidence: float = 1.0
    """``capacity_model``: a change is made only when its expected gain over keeping the tower
    exceeds this many standard errors of the capacity value times the change's size (one:
    the controller does not act on what one noisy session measured)."""
    size_contrast: float = 0.25
    """``capacity_model``: a session whose tower is within this many doublings of the reference
    tower's parameters measures nothing about capacity (its AUC gap over the reference is noise
    divided by almost zero) and is left out of the capacity model."""
    floor_widths: tuple[int, ...] | None = None
    """``capacity_model``: the narrowest tower, per layer, the controller shrinks to (None: the
    width limits). The ``leanrec`` preset sets it to the tower it starts from (fixed-small):
    the capacity model is measured between the tower and a larger reference, so below
    fixed-small it would extrapolate (without the floor it shrinks to the width limit, where
    towers lose accuracy on the warm-ups: ``docs/design/adaptive.md``), and the bytes a
    narrower tower saves are under 3% of the model's."""
    shift_threshold: float | None = None
    """``capacity_model``: a session whose item drift (the total-variation distance of the
    first chunk's items from the previous session's) lies more than this many standard
    deviations above its mean over the earlier sessions is a shift of the input: the
    controller grows by the largest step without waiting for a measurement (the growth keeps
    the function, so it costs size, not accuracy) and the next sessions' measurements price the
    new units. None: no shift rule."""
    new_unit_boost: float = 1.0
    """``capacity_model``: after a growth for a shift of the input (``shift_threshold``), the
    grown units' weights (their incoming rows and biases, and the columns that read them, head
    included) take this many times the dense optimiser's step for the rest of the session (1:
    the same step as every weight). Their outgoing weights start at zero, and one pass at
    Adam's 3e-4 moves a weight by at most about ``3e-4`` per step (75 steps in a session of the
    planted-drift stream, against trained weights of about 0.1): without it a grown unit needs
    several sessions to matter, and the grown tower computes what the tower before it did.
    A growth the capacity model prices is not boosted: on the warm-ups that lowered the AUC
    (the tower learns the same data, and fast new units disturb what it has learnt)."""
    seed: int = 0
    """Seeds the controller's networks and action sampling (the experiment sets it per seed)."""

    def __post_init__(self) -> None:
        check_literals(self)
        if not 0.0 <= self.discount < 1.0:
            raise ValueError(f"discount must be in [0, 1), got {self.discount}")
        if self.capacity_halflife <= 0 or self.size_contrast < 0 or self.confidence < 0:
            raise ValueError("capacity_halflife must be > 0, size_contrast and confidence >= 0")
        if not 1 <= self.min_width <= self.max_width:
            raise ValueError(f"need 1 <= min_width <= max_width, got {self.min_width}, "
                             f"{self.max_width}")  # fmt: skip
        if not 1 <= self.min_depth <= self.max_depth:
            raise ValueError(f"need 1 <= min_depth <= max_depth, got {self.min_depth}, "
                             f"{self.max_depth}")  # fmt: skip
        self.initial_widths = tuple(int(w) for w in self.initial_widths)
        check_widths(self.initial_widths, self, "initial_widths")
        self.reference_widths = tuple(int(w) for w in self.reference_widths)
        if self.floor_widths is not None:
            self.floor_widths = tuple(int(w) for w in self.floor_widths)
            check_widths(self.floor_widths, self, "floor_widths")
        if self.shift_threshold is not None and self.shift_threshold <= 0:
            raise ValueError(f"shift_threshold must be > 0 or None, got {self.shift_threshold}")
        if self.new_unit_boost < 1.0:
            raise ValueError(f"new_unit_boost must be >= 1, got {self.new_unit_boost}")
        if self.penalty < 0 or self.freeze_steps < 0 or self.ewc_strength < 0:
            raise ValueError("penalty, freeze_steps and ewc_strength must be >= 0")


CONTROLLER_PRESETS: dict[str, dict[str, Any]] = {
    "paper": {},
    "leanrec": {
        "algorithm": "capacity_model",
        "initial_widths": (64, 32),
        "floor_widths": (64, 32),
        "reference_widths": (200, 80),
        "shift_threshold": 6.0,
        "new_unit_boost": 10.0,
    },
}
"""Field values over :class:`AdaptiveConfig` per preset. ``paper``: RCL's controller as the
defaults above (LSTM policy, REINFORCE, per-layer width and depth actions). ``leanrec``: the
controller decides from a learned model of the reward instead of a sampled policy
(``algorithm="capacity_model"``); it starts from fixed-small's tower and never shrinks below
it, its reference model is fixed-medium's tower (what capacity above the tower buys is
measured every session), and a shift of the input (item drift six standard deviations above
its history; the warm-ups of the three benchmark streams reached 2.7 at most) grows the tower
at once, its new units taking ten times the dense step for the rest of that session. Why,
and the figures behind each choice, are in ``docs/design/adaptive.md``."""


def controller_preset(config: AdaptiveConfig, preset: str) -> AdaptiveConfig:
    """``config`` with the fields of ``preset`` (:data:`CONTROLLER_PRESETS`) set over it; the
    preset's towers (``initial_widths``, ``floor_widths``) cut to ``config``'s width and depth
    limits (a config with tighter limits than the defaults still takes the preset)."""
    if preset not in CONTROLLER_PRESETS:
        raise ValueError(f"unknown controller preset {preset!r}; choose from "
                         f"{sorted(CONTROLLER_PRESETS)}")  # fmt: skip
    fields = dict(CONTROLLER_PRESETS[preset])
    for name in ("initial_widths", "floor_widths"):
        if fields.get(name) is not None:
            fields[name] = tuple(min(max(int(w), config.min_width), config.max_width)
                                 for w in fields[name][: config.max_depth])  # fmt: skip
    return dataclasses.replace(config, **fields)


def check_widths(widths: tuple[int, ...], config: AdaptiveConfig, what: str = "widths") -> None:
    """Raise ``ValueError`` naming ``what`` when ``widths`` break the controller's limits."""
    if not config.min_depth <= len(widths) <= config.max_depth:
        raise ValueError(f"{what} {widths}: depth must be in {config.min_depth}.."
                         f"{config.max_depth}")  # fmt: skip
    bad = [w for w in widths if not config.min_width <= w <= config.max_width]
    if bad:
        raise ValueError(f"{what} {widths}: widths must be in {config.min_width}.."
                         f"{config.max_width}")  # fmt: skip


@dataclass
class AdaptiveExperiment:
    """Every method on one stream cut into sessions; prequential figures per session."""

    dataset: str | DataFile = "ml-1m-partial"
    """Registry dataset streamed in time order (``ml-1m-partial``: ML-1M with timestamps), or a
    table of one's own with rating and time columns (:class:`~leanrec.data.own.DataFile`)."""
    data_dir: str | None = None
    """Where the datasets are (None: the registry's default)."""
    out_dir: str = "runs/adaptive-ml-1m-partial"
    """The run directory (an existing one is resumed)."""
    model: str = "deepfm"
    """Base model whose tower is shaped: ``deepfm`` or ``dnn`` (the deep tower), or ``neumf``
    (NeuMF's MLP; its output layer also reads the GMF vector)."""
    embedding_dim: int = 16
    """``d`` of every ID vector (16: the stream protocol's constant)."""
    init_std: float = 0.01
    """Std of new embedding rows (the shared-embedding experiment's choice on ML-1M)."""
    sessions: int = 20
    """Evaluated sessions of equal event counts after the warm-up (weeks of ML-1M are very
    unequal: most hold under 1,000 events)."""
    session_by: Literal["events", "week"] = "events"
    """``events``: ``sessions`` equal parts; ``week``: calendar weeks (Monday-Sunday, UTC)."""
    warmup_fraction: float = 0.2
    """Leading share of the stream used for training and every choice; never reported."""
    warmup_sessions: int = 8
    """Equal parts of the warm-up: the first is only learnt, the others are scored like
    evaluated sessions, pretrain the controller and choose ``λ`` (seven decisions before the
    evaluated stream: with fewer, every ``λ`` kept the starting tower on the ML-100K warm-up
    and the choice of ``λ`` saw no difference between them)."""
    chunk_size: int = 1000
    """Events per prequential chunk inside a session (predict, then learn)."""
    seeds: tuple[int, ...] = (0, 1, 2)
    """Seeds vary the initialisation and the controller, never the stream."""
    methods: tuple[str, ...] = DEFAULT_METHODS
    """Methods to run, names of :data:`~leanrec.search.adaptive.baselines.METHODS`."""
    lambda_grid: tuple[float, ...] = (0.0, 0.02, 0.1, 0.5)
    """``λ`` values tried on the warm-up sessions (and run in full with ``sweep``). A 32-unit
    change moves ``p`` by about 0.02-0.1, so 0.02 makes it cost at most 0.002 AUC (size
    hardly matters) and 0.5 up to 0.05, above a session's AUC noise (size dominates)."""
    leanrec_lambda_grid: tuple[float, ...] = (0.0, 0.005, 0.01, 0.02)
    """``λ`` values of the ``leanrec`` controller (the same choice rule and sweep). Its
    decisions price a change at ``λ Δp`` against the AUC the capacity model expects from it,
    so λ must be on the scale of what capacity buys: over the warm-up sessions fixed-large's
    whole tower (``Δp ≈ 1``) bought +0.0014 (planted drift), +0.0008 (ML-100K) and −0.0025
    (ML-1M) AUC over fixed-small per session, +0.008 at most in one session; 0.02 prices it
    above all of that, while 0.1 and 0.5 would make every growth lose whatever the data."""
    auc_tolerance: float = 0.005
    """The headline ``λ`` is the largest whose warm-up AUC is within this relative gap of
    fixed-large's warm-up AUC (0.5%: the accuracy the adaptive model must keep)."""
    sweep: bool = True
    """Run every ``λ`` of the grid over the whole stream (the accuracy-size curve; chooses
    nothing); False: only the headline ``λ``."""
    grow_units: int = 16
    """``n`` of always-grow: units added to every layer every session (16: the controller's
    smallest step, so always-grow reaches 512 only near the end of a 27-session run)."""
    loss_threshold: float = 0.02
    """Relative change of the first-chunk loss against the previous session's loss above
    which the loss-threshold rule grows (rise) or prunes (fall) (2%: about the spread of a
    1,000-event chunk's log loss, so the rule does not act on noise alone)."""
    controller: AdaptiveConfig = field(default_factory=AdaptiveConfig)
    """The controller (``seed`` is set per seed, ``penalty`` per ``λ``)."""
    trainer: StreamTrainerConfig = field(default_factory=default_trainer)
    """The base model's training, the same for every method."""
    log_every: int = 5
    """A progress line every this many sessions (four lines per row of 20 sessions)."""
    num_threads: int = 1
    """torch intra-op threads (0: leave torch's default)."""
    executor: Literal["serial", "ray"] = "serial"
    """Where the warm-up runs and the rows run (``leanrec.runner``): ``"serial"`` in this
    process, or ``"ray"``, one job per warm-up run and per row (the cluster of
    ``RAY_ADDRESS``, else a local one on 127.0.0.1); the rows are the same either way."""
    executor_cpus_per_job: float = 1.0
    """CPUs Ray reserves for each job."""

    def __post_init__(self) -> None:
        check_literals(self)
        names_as_tuples(self, "methods")
        check_not_empty(self, "methods", "seeds")
        if self.sessions < 1 or self.warmup_sessions < 2 or self.chunk_size < 1:
            raise ValueError("need sessions >= 1, warmup_sessions >= 2 and chunk_size >= 1")
        if not 0.0 < self.warmup_fraction < 1.0:
            raise ValueError(f"warmup_fraction must be in (0, 1), got {self.warmup_fraction}")
        for name in ("lambda_grid", "leanrec_lambda_grid"):
            grid = getattr(self, name)
            if not grid or not all(0 <= v < math.inf for v in grid):  # NaN fails both
                raise ValueError(f"{name} must hold finite values >= 0, got {grid}")
        if self.model not in ("deepfm", "dnn", "neumf"):
            raise ValueError("model must be 'deepfm' or 'dnn' (a deep tower) or 'neumf' (its "
                             f"MLP), got {self.model!r}")  # fmt: skip
        if self.trainer.objective != "bce":
            raise ValueError("the adaptive experiment scores AUC: trainer objective must be 'bce'")


__all__ = [
    "CONTROLLER_PRESETS",
    "DEFAULT_METHODS",
    "DEPTH_DELTAS",
    "WIDTH_DELTAS",
    "AdaptiveConfig",
    "AdaptiveExperiment",
    "check_widths",
    "controller_preset",
    "default_trainer",
]
