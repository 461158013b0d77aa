"""Configuration of the embedding-size search (CIESS, Qu et al. SIGIR 2023), of its PEP baseline
and of the experiment that compares them (CIESS Table 1).

Where a default departs from the paper, the field says so in one line; the measurements behind
those choices are in ``docs/design/ciess-search.md``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

from leanrec.data.own import DataFile
from leanrec.options import check_at_least, check_literals, check_not_empty, names_as_tuples
from leanrec.rl.td3 import TD3Config
from leanrec.search.base import preset_values
from leanrec.train.bpr import TrainerConfig


def _bpr_schedule(
    max_epochs: int, learning_rate: float, eval_every: int, patience: int
) -> TrainerConfig:
    """The BPR trainer of the pretraining and the retraining: 8,192 triples a batch, 4
    negatives, L2 1e-4, early stopping on validation Recall@20 with a 0.3 step decay; dense
    Adam on the tables, as the published figures were trained."""
    return TrainerConfig(
        embedding_optimizer="dense_adam",
        max_epochs=max_epochs,
        batch_size=8192,
        learning_rate=learning_rate,
        n_negatives=4,
        l2=1e-4,
        eval_every=eval_every,
        patience=patience,
        lr_decay=0.3,
        valid_metric="recall@20",
        ks=[5, 10, 20],
    )


def default_pretrain() -> TrainerConfig:
    """The warm start's training: up to 300 epochs at lr 0.01, validated every 5."""
    return _bpr_schedule(max_epochs=300, learning_rate=0.01, eval_every=5, patience=4)


def default_retrain() -> TrainerConfig:
    """Each kept mask's retraining: up to 200 epochs at lr 0.005, validated every 2."""
    return _bpr_schedule(max_epochs=200, learning_rate=0.005, eval_every=2, patience=3)


@dataclass
class CIESSConfig:
    """Everything the search needs; paper defaults noted where the paper gives one."""

    max_dim: int = 128
    """``d_max`` (128): full embedding size and upper end of the action space ``[1, d_max]``."""
    episodes: int = 30
    """``M``, search episodes (paper: 30)."""
    iterations: int = 10
    """``T``, iterations per episode (paper: 10)."""
    reward_lambda: float = 0.4
    """``λ`` of the reward ``r = q - λ (d / d_max)^2`` (Eq. 10; paper: 0.4 on ML-1M, 0.2 Yelp).
    With :attr:`reward_lambda_final` set, the ``λ`` of the first episode."""
    reward_lambda_final: float | None = None
    """``λ`` of the last episode (None: ``λ`` stays :attr:`reward_lambda`, the paper's rule).
    Set, ``λ`` grows geometrically over the episodes (:func:`.policy.reward_lambda_at`) and
    stored rewards are relabelled, so one search on a converged warm start walks through every
    budget (not in the paper; see docs/design/ciess-search.md)."""
    eval_ks: tuple[int, ...] = (5, 10, 20)
    """``K`` of the quality ``eval`` (Eq. 8, (5, 10, 20)): mean of Recall@k and NDCG@k."""
    item_quality: Literal["users", "hits"] = "users"
    """``eval(e_i)`` of an item: ``users`` (default), the paper's Eq. 9 (mean eval of the item's
    training users), or ``hits``, the item's own validation retrieval averaged over
    ``eval_ks`` (Eq. 9 where it has none), which depends on the item's own size."""
    noise: Literal["gaussian", "ou", "uniform"] = "gaussian"
    """Exploration noise of Eq. 11: ``gaussian`` (G, default), ``ou`` (OU) or ``uniform`` (U)."""
    noise_sigma: float = 6.0
    """``σ`` of the exploration noise (paper: 6)."""
    random_walk: bool = True
    """Explore by random walk and let the critic pick (Eq. 12-14; True); off for the ablation."""
    walk_length: int = 5
    """Random-walk length ``|Z|`` (paper: 5)."""
    walk_threshold: int = 5
    """Largest random-walk step ``t`` (paper: 5)."""
    td3: TD3Config = field(default_factory=TD3Config)
    """Actor/critic hyper-parameters (separate agents for users and items share them)."""
    updates_per_iteration: int = 100
    """TD3 gradient steps per agent after each iteration (100; Algorithm 1, line 13-14)."""
    rl_batch_size: int = 512
    """Transitions per TD3 step (512)."""
    replay_capacity: int = 1_000_000
    """Transitions kept per agent (1,000,000: every transition of a paper-size search)."""
    inner_batches: int = 8
    """BPR steps under each iteration's mask (8; Algorithm 1, line 10). The paper trains 5
    epochs from scratch; a few steps from the warm start (:attr:`warm_start`) bound the cost."""
    inner_batch_size: int = 32768
    """Triples per inner BPR step (32,768: large batches amortise graph propagation)."""
    inner_learning_rate: float = 0.005
    """Adam step size of the inner fine-tuning (0.005)."""
    inner_negatives: int = 1
    """Negatives per positive in inner steps (1)."""
    warm_start: bool = True
    """Start every iteration from a full-size model pretrained with prefix dropout and
    fine-tune it for :attr:`inner_batches` (True; not in the paper: it makes a few batches a
    faithful quality signal), or (False, the paper's Algorithm 1, line 7-10) from one fixed
    fresh initialisation trained for :attr:`fresh_epochs`, with Eq. 7's reference a fully
    trained ordinary full-size model."""
    fresh_epochs: int = 5
    """Epochs over the training data of each iteration's fresh model when :attr:`warm_start`
    is False (paper: 5)."""
    fresh_batch_size: int = 2048
    """Triples per step of those epochs (2,048)."""
    pretrain: TrainerConfig = field(default_factory=default_pretrain)
    """Training of the warm start / full-size reference (its validation eval is Eq. 7's
    denominator); :func:`default_pretrain`."""
    retrain: TrainerConfig = field(default_factory=default_retrain)
    """Selective retraining of each kept mask to convergence, early-stopped on validation;
    :func:`default_retrain`."""
    retrain_from_warm_start: bool = True
    """Retrain kept masks from the warm start's truncated weights (True; False: from scratch)."""
    target_sparsities: tuple[float, ...] = (0.8, 0.9, 0.95)
    """``c`` values served by one search (Eq. 15; the paper's 80%, 90%, 95%)."""
    rescale_to_budget: bool = True
    """How the candidate set ``M_c`` meets ``c`` (not in the paper when True). True: when
    fewer than ``l`` searched masks meet ``c`` the sparsest others fill the set, and every
    chosen mask is rescaled onto ``c`` (:attr:`budget_projection`). False (Eq. 15 as written):
    only searched masks meeting ``c`` are admitted and retrained as searched; a ``c`` that no
    searched mask meets is reported as not reached."""
    budget_projection: Literal["joint", "per_role", "both"] = "joint"
    """How a selected mask is projected onto the budget ``c`` before retraining
    (:func:`~leanrec.search.embedding_size.retrain.fit_candidate`): ``joint`` (default, one
    scale for users and items), ``per_role`` (users and items each at ``c``), or ``both``
    (retrain both, keep the better on validation)."""
    top_masks: int = 2
    """``l``: masks kept per target sparsity and retrained (Eq. 15-16; 2)."""
    screen_masks: int = 0
    """Validation screen before retraining (0: off, Eq. 16's ``q̄`` alone picks the ``l``
    masks; not in the paper). With ``S > 0`` the ``S`` best candidates by ``q̄`` are projected
    onto ``c`` (every projection of :attr:`budget_projection`), scored untrained on
    validation as the warm start under those sizes, and the ``l`` best are retrained. Needs
    the warm start; see docs/design/ciess-search.md."""
    seed: int = 2024
    """Seeds every generator of the search (2024)."""
    num_threads: int = 1
    """torch threads (1, for reproducible timings; 0: torch's default)."""
    executor: Literal["serial", "ray"] = "serial"
    """Where the masks of the selective retraining and of the screen run
    (``leanrec.runner.search_executor``): ``"serial"``, one after another in this process, or
    ``"ray"``, one Ray task each (the ``ray`` extra; the cluster of ``RAY_ADDRESS``, else a
    local one). The same models and rows either way."""
    executor_cpus_per_job: float = 1.0
    """CPUs Ray reserves per retraining or screening task."""
    progress: bool | None = None
    """Progress bars (None: only on a terminal)."""

    def __post_init__(self) -> None:
        check_literals(self)
        check_at_least(
            self, 1, "max_dim", "episodes", "iterations", "eval_ks", "walk_length",
            "updates_per_iteration", "rl_batch_size", "replay_capacity", "inner_batches",
            "inner_batch_size", "inner_negatives", "top_masks",
        )  # fmt: skip
        check_at_least(
            self, 0, "noise_sigma", "walk_threshold", "inner_learning_rate", "num_threads",
            "executor_cpus_per_job", "seed",
        )  # fmt: skip
        if self.screen_masks < 0:
            raise ValueError(f"screen_masks must be >= 0 (0: no screen), got {self.screen_masks}")
        bad = [c for c in self.target_sparsities if not 0.0 <= c < 1.0]
        if bad or not self.target_sparsities:
            raise ValueError(
                f"target_sparsities must be one or more values in [0, 1), got "
                f"{list(self.target_sparsities)}"
            )
        if self.fresh_epochs < 1 or self.fresh_batch_size < 1:
            raise ValueError(
                f"fresh_epochs and fresh_batch_size must be >= 1, got {self.fresh_epochs} and "
                f"{self.fresh_batch_size}"
            )


@dataclass
class PEPConfig:
    """PEP (Liu et al., ICLR 2021) as run here: feature-wise learnable thresholds."""

    threshold_init: float = -8.0
    """Initial ``s`` (-8: ``sigmoid(-8) ≈ 3e-4``, almost nothing pruned at first)."""
    learning_rate: float = 0.005
    """Adam step size for weights and thresholds (0.005)."""
    l2: float = 1e-4
    """λ of the BPR L2 penalty on the thresholded vectors (1e-4; what pushes thresholds up)."""
    batch_size: int = 8192
    """Triples per step (8,192)."""
    n_negatives: int = 4
    """Negatives per positive (4)."""
    max_epochs: int = 60
    """Epochs of threshold learning (60); targets not reached by then are completed by
    magnitude."""
    retrain_from: Literal["trained", "init"] = "trained"
    """Weights each mask is retrained from: ``trained`` (default), the pruned model's own
    trained values, or ``init``, the initial values that model was trained from (same seed):
    the PEP paper's lottery-ticket retraining."""

    def __post_init__(self) -> None:
        check_literals(self)
        check_at_least(self, 1, "batch_size", "n_negatives", "max_epochs")
        check_at_least(self, 0, "learning_rate", "l2")


def _every_method() -> tuple[str, ...]:
    """Every registered method, in the table's order (imported late: the registry's module
    imports this one)."""
    from leanrec.search.embedding_size.baselines import METHODS

    return METHODS.names()


@dataclass
class EmbeddingSizeExperiment:
    """What to run and where: CIESS and its baselines at every budget of ``search``."""

    dataset: str | DataFile = "ml-1m"
    """Dataset name (``ml-1m``, the paper's; see ``leanrec datasets``), or a file of one's own
    (:class:`~leanrec.data.own.DataFile`)."""
    model: str = "lightgcn"
    """Base recommender: ``lightgcn`` (default), ``ngcf``, ``neumf``/``ncf`` or ``mf``."""
    model_options: dict[str, Any] = field(default_factory=dict)
    """Base model config overrides (none; ``embedding_dim`` is always ``d_max``)."""
    protocol: str = "ciess"
    """Split protocol (``ciess``: all ratings positive, per-user 50/25/25)."""
    data_dir: str | None = None
    """Where the dataset lives (None: ``LEANREC_DATA`` or the cache dir)."""
    out_dir: str = "runs/embedding-size"
    """Output directory, also the resume state (``runs/embedding-size``)."""
    methods: tuple[str, ...] = field(default_factory=_every_method)
    """Which methods to run, in this order (default: every one of
    :data:`~leanrec.search.embedding_size.baselines.METHODS`)."""
    search: CIESSConfig = field(default_factory=CIESSConfig)
    """CIESS configuration (also the budgets and retraining used by every baseline)."""
    pep: PEPConfig = field(default_factory=PEPConfig)
    """The PEP baseline's threshold learning."""
    warm_start_init: str | None = None
    """Start pretraining from this full-size checkpoint (an earlier run's ``warm_start.pt``,
    same dataset, split, model and ``d_max``) and train it further under ``search.pretrain``;
    None (default): pretrain from a fresh initialisation."""
    split_seed: int | None = None
    """Seed of the random train/valid/test split (None: ``search.seed``). Fix it to compare
    searches of several seeds on one split and one warm start."""
    pruning_base: Literal["warm_start", "ordinary"] = "warm_start"
    """The full-size model MagPrune prunes and PEP learns its thresholds on: ``warm_start``
    (default), the prefix-dropout warm start CIESS searches from, or ``ordinary``, a full-size
    model trained without prefix dropout under ``search.pretrain`` (same seed), as the paper's
    pruning baselines start from (saved as ``ordinary.pt``, reported as ``full_ordinary``)."""

    preset: str | None = None
    """The preset the fields were set from (:func:`apply_preset`: ``paper`` or ``leanrec``),
    recorded in ``config.json``; None: the fields as given. What the fields amount to is
    :func:`preset_label`, which every row and ``results.json`` carry."""

    def __post_init__(self) -> None:
        check_literals(self)
        names_as_tuples(self, "methods")
        check_not_empty(self, "methods")


# ------------------------------------------------------------------------------ presets
FROM_SCRATCH_MIN_EPOCHS = 30
"""Epochs every retraining of the paper's protocol (each mask from a random initialisation;
PEP's from its pruned weights, under the same trainer) trains before early stopping may end
it (the ``min_epochs`` warm-up of :class:`~leanrec.train.bpr.TrainerConfig`). Without it the
paper's "to convergence" stops at the first plateau: on ML-1M/LightGCN at 90% and 95%
sparsity, validation Recall@20 sits near 0.098 (popularity's level) for the first 8 epochs,
which patience 3 at every second epoch takes for convergence, while the same retraining at 80%
leaves that plateau at epoch 8 and converges near epoch 80. A retraining from the warm start
starts above it and needs no warm-up."""

LEANREC_ADDITIONS: dict[str, dict[str, Any]] = {
    "warm_start": {"search.warm_start": False},
    "item_hits": {"search.item_quality": "users"},
    "rising_lambda": {"search.reward_lambda_final": None},
    "screen": {"search.screen_masks": 0},
    "rescaling": {"search.rescale_to_budget": False},
    "both_projections": {"search.budget_projection": "joint"},
    "retrain_from_warm_start": {
        "search.retrain_from_warm_start": False,
        "search.retrain.min_epochs": FROM_SCRATCH_MIN_EPOCHS,
    },
    "validate_initial": {"search.retrain.validate_initial": False},
    "pruning_base": {"pruning_base": "ordinary"},
}
"""Each of leanrec's departures from the paper, as the field values that turn it off alone
(the paper's value). ``warm_start``: search steps fine-tune a prefix-dropout warm start for a
few batches instead of training a fresh model for 5 epochs; ``item_hits``: an item's quality
is its own validation retrieval, not Eq. 9; ``rising_lambda``: ``λ`` grows over the episodes
instead of staying fixed; ``screen``: the kept masks are chosen by their untrained validation
score, not by ``q̄`` alone; ``rescaling``: masks not meeting ``c`` fill the candidate set and
every mask is rescaled onto ``c`` (Eq. 15 admits only masks meeting ``c``);
``both_projections``: each mask is rescaled jointly and per role and the better kept (only
with ``rescaling``); ``retrain_from_warm_start``: the kept masks are retrained from the warm
start instead of from a random initialisation (which the paper's protocol trains for at least
:data:`FROM_SCRATCH_MIN_EPOCHS` epochs before early stopping may end it);
``validate_initial``: each retraining's starting weights count as epoch 0; ``pruning_base``:
MagPrune and PEP prune the warm start instead of an ordinary model (a baseline setting)."""

PRESETS: dict[str, dict[str, Any]] = {
    "leanrec": {
        "search.warm_start": True,
        "search.item_quality": "hits",
        "search.reward_lambda": 0.4,
        "search.reward_lambda_final": 12.0,
        "search.screen_masks": 300,
        "search.rescale_to_budget": True,
        "search.budget_projection": "both",
        "search.retrain_from_warm_start": True,
        "search.retrain.min_epochs": 0,
        "search.retrain.validate_initial": True,
        "search.top_masks": 2,
        "pruning_base": "warm_start",
    },
}
PRESETS["paper"] = {
    **PRESETS["leanrec"],
    **{path: value for change in LEANREC_ADDITIONS.values() for path, value in change.items()},
}
"""Field values per preset, as ``"search.<field>"`` / ``"<experiment field>"`` paths.
``leanrec``: the configuration of the headline ML-1M searches (every addition of
:data:`LEANREC_ADDITIONS` on; their training schedule, e.g. ``--retrain-epochs 8``, is set
apart). ``paper``: CIESS as its paper specifies it (fixed ``λ = 0.4``, Eq. 9, fresh 5-epoch
models in the search, Eq. 15 admission only, masks retrained from scratch to convergence,
pruning baselines on an ordinary model). Both keep ``l = 2`` and dense Adam."""


def _get_path(config: Any, path: str) -> Any:
    for part in path.split("."):
        config = getattr(config, part)
    return config


def _set_path(config: Any, path: str, value: Any) -> Any:
    head, _, rest = path.partition(".")
    if not rest:
        return dataclasses.replace(config, **{head: value})
    return dataclasses.replace(config, **{head: _set_path(getattr(config, head), rest, value)})


def apply_preset(
    experiment: EmbeddingSizeExperiment, preset: str, without: tuple[str, ...] = ()
) -> EmbeddingSizeExperiment:
    """``experiment`` with the fields of ``preset`` (:data:`PRESETS`) set over it, then each
    addition named in ``without`` (:data:`LEANREC_ADDITIONS`) turned off; every other field
    (dataset, budgets, training schedules) is kept.

    Example::

        paper = apply_preset(EmbeddingSizeExperiment(dataset="ml-100k"), "paper")
        no_screen = apply_preset(EmbeddingSizeExperiment(), "leanrec", without=("screen",))
    """
    values = preset_values(PRESETS, LEANREC_ADDITIONS, preset, without)
    for path, value in values.items():
        experiment = _set_path(experiment, path, value)
    return dataclasses.replace(experiment, preset=preset)


def additions_on(experiment: EmbeddingSizeExperiment) -> list[str]:
    """The additions of :data:`LEANREC_ADDITIONS` whose fields differ from the paper's."""
    return [
        name
        for name, change in LEANREC_ADDITIONS.items()
        if any(_comparable(_get_path(experiment, p)) != _comparable(v) for p, v in change.items())
    ]


def preset_label(experiment: EmbeddingSizeExperiment) -> str:
    """What the fields amount to: ``paper`` or ``leanrec`` when every field of that preset
    holds; ``leanrec without <additions>`` or ``paper with <additions>`` (whichever lists
    fewer) when each addition of :data:`LEANREC_ADDITIONS` is at its paper or its leanrec
    value; else ``custom (<additions on>)``. Derived from the fields, so a setting changed
    after the preset shows."""

    def holds(values: dict[str, Any]) -> bool:
        return all(
            _comparable(_get_path(experiment, p)) == _comparable(v) for p, v in values.items()
        )

    for name, values in PRESETS.items():
        if holds(values):
            return name
    leanrec, paper = PRESETS["leanrec"], PRESETS["paper"]
    on = additions_on(experiment)
    shared = {p: v for p, v in leanrec.items() if paper[p] == v}
    each_known = all(
        holds(change) or holds({p: leanrec[p] for p in change})
        for change in LEANREC_ADDITIONS.values()
    )
    if holds(shared) and each_known:
        off = [name for name in LEANREC_ADDITIONS if name not in on]
        if len(off) <= len(on):
            return "leanrec without " + ", ".join(off)
        return "paper with " + ", ".join(on)
    return f"custom ({', '.join(on) or 'no additions'})"


def _comparable(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def experiment_from_dict(saved: dict[str, Any]) -> EmbeddingSizeExperiment:
    """The experiment a run directory's ``config.json`` describes (its nested configs
    rebuilt; a field written since counts as its default)."""
    raw = dict(saved)
    search_raw = dict(raw.pop("search", {}))
    pretrain = TrainerConfig.from_dict(search_raw.pop("pretrain", {}), drop_unknown=True)
    retrain = TrainerConfig.from_dict(search_raw.pop("retrain", {}), drop_unknown=True)
    td3 = TD3Config(**search_raw.pop("td3", {}))
    search_fields = {f.name for f in dataclasses.fields(CIESSConfig)}
    search = CIESSConfig(
        **{k: _tupled(v) for k, v in search_raw.items() if k in search_fields},
        pretrain=pretrain,
        retrain=retrain,
        td3=td3,
    )
    pep = PEPConfig(**raw.pop("pep", {}))
    dataset = raw.pop("dataset", "ml-1m")
    if isinstance(dataset, dict):
        dataset = DataFile(**dataset)
    fields = {f.name for f in dataclasses.fields(EmbeddingSizeExperiment)}
    return EmbeddingSizeExperiment(
        dataset=dataset,
        search=search,
        pep=pep,
        **{k: _tupled(v) for k, v in raw.items() if k in fields},
    )


def _tupled(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value
