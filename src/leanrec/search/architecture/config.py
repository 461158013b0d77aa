"""Configuration of AMEIR (Zhao et al., IJCAI 2021) and of its two experiments.

* :class:`ArchitectureSearchConfig`: the three-step one-shot random search on CTR samples;
* :class:`RetrievalSearchConfig`: its Step 1 alone on next-item sequences (the paper's
  sequential scenario);
* :class:`ArchitectureExperiment`: Tables 1 and 4 (ML-1M CTR), hand-designed baselines against
  AMEIR and two NAS baselines, the searches capped at the best baseline's parameter count;
* :class:`RetrievalExperiment`: Table 2 (Amazon Beauty next-item retrieval).

Two presets of each search config (:func:`apply_preset`): ``paper``, AMEIR as its paper wrote
it, and ``leanrec``, leanrec's variant (the defaults), whose every addition is a switch of
:data:`LEANREC_ADDITIONS` that turns off alone.

Why the defaults are what they are, with the runs behind them: ``docs/design/ameir-one-shot.md``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from leanrec.data.own import DataFile
from leanrec.data.sequential import NegativeSampling
from leanrec.models.ctr.ameir.architecture import check_readout
from leanrec.options import check_literals, check_not_empty, names_as_tuples
from leanrec.search.base import preset_values

HAND_DESIGNED: tuple[str, ...] = ("dnn", "wide_deep", "deepfm", "xdeepfm", "din")
"""The hand-designed CTR baselines of Table 1, in the table's order."""
NAS_METHODS: tuple[str, ...] = ("ameir", "one_shot", "random")
"""The searches of Table 4: ``ameir``, the three-step search; ``one_shot``, single-stage
one-shot random search; ``random``, random search with training from scratch."""
RETRIEVAL_BASELINES: tuple[str, ...] = ("gru4rec", "sasrec")
"""The hand-designed next-item baselines of Table 2."""
RETRIEVAL_METHODS: tuple[str, ...] = ("ameir",)
"""The next-item searches of Table 2: AMEIR's Step 1."""
RandomBudget = Literal["seconds", "samples"]
"""What random search from scratch gets of AMEIR's search at the same seed."""


@dataclass
class ArchitectureSearchConfig:
    """Everything one search needs; the paper's value is noted where the paper gives one.

    The paper trains on GPUs with 2,000 sampled children per step; the defaults here are cut so
    that the three steps together cost a few DeepFM trainings on one CPU core, and every cut is
    a field.
    """

    embedding_dim: int = 16
    """``K``, width of every field embedding (paper: 4 on Alimama; our CTR baselines use 16)."""
    behavior_blocks: int = 3
    """``L_a``, residual building blocks of the behaviour network (paper: 3)."""
    mlp_layers: int = 2
    """``L_c``, hidden layers of the aggregation MLP (paper: 2)."""
    readout: tuple[str, ...] = ("mean",)
    """Parts of the behaviour readout ``h^a`` (``READOUT_PARTS``; paper: ``("sum", "last",
    "attention")``). Mean pooling alone validates higher on ML-1M CTR, and children with
    inherited weights cannot tell readouts apart, so this is a setting, not a searched choice
    (docs/design/ameir-one-shot.md)."""
    fm_shortcut: bool = True
    """Backbone option: add the FM pairwise term ``Σ_{i<j} <q_i, q_j>`` over the fields, the
    kept interactions and the pooled history to every model's logit (no parameters). The paper
    keeps this in its backbone analysis: searched interactions "applied to MLP and FM" improve
    a DNN in orthogonal ways, and its AMEIR-I is a DeepFM backbone with searched interactions.
    It is a setting, like ``readout``, not a searched choice. On by default: it validates
    higher on ML-1M CTR (docs/design/ameir-one-shot.md)."""
    predefined_mlp: tuple[int, ...] = (200, 80)
    """The fixed MLP of Steps 1 and 2 (paper: [200, 80])."""
    interactions: int = 5
    """``M``, Hadamard interactions kept after Step 2 (paper: 5)."""
    evolution_cycles: int = 3
    """Cycles of Step 2's evolution; cycle ``c`` reaches order ``c + 1`` (paper: 4)."""
    keep_per_cycle: int = 20
    """Top-k interactions kept after each cycle (paper: 50)."""
    sampled_children: int = 100
    """Children evaluated with inherited weights in Steps 1 and 3 (paper: 2,000)."""
    largest_child_share: float = 0.5
    """Share of Step 3's one-shot batches that train the largest MLP within the budget instead
    of a uniform child (the "max" child of the sandwich rule, Yu et al. 2020); 0 is the paper's
    uniform sampling. Sliced weights are shared by prefix, so under uniform sampling the first
    units are trained by every child and the last ones rarely: small children then look better
    with inherited weights than they train to (docs/design/ameir-one-shot.md)."""
    top_children: int = 5
    """Best children (on the validation subset) re-scored on the whole validation set; the
    best of them is kept (paper: top-5 further evaluated)."""
    validation_subset: int = 8192
    """Validation samples used to rank children with inherited weights ("a small subset of
    validation instances")."""
    supernet_epochs: float = 1.0
    """Passes over the training samples for each step's one-shot model (fractions allowed);
    Step 2's cycles share its budget."""
    carry_embeddings: bool = True
    """Step 2's one-shot model starts from Step 1's field embeddings and Step 3's from Step
    2's (Step 3 still takes the behaviour network from Step 1), so the derived model's
    embeddings are trained by all three one-shot budgets in turn, as the single-stage
    baseline's are by its one budget of the same length. Off: Step 2 starts from scratch and
    Step 3 inherits from Step 1 only (the paper inherits within Step 2's cycles and into the
    derived model; it does not say whether steps pass weights on). On by default: it
    validates higher on ML-1M CTR (docs/design/ameir-one-shot.md)."""
    keep_best_one_shot: bool = True
    """Early stopping for the one-shot models: after every pass over the training samples, probe
    the one-shot model (mean AUC of ``probe_children`` fixed children on the validation subset)
    and, at the end of the step, go back to its best-probed state. Steps 1 and 3 and the
    single-stage baseline score their children with that state, and Step 2 passes on the field
    embeddings of its best pass (its interactions are still ranked with its last weights, since
    later cycles' candidates do not exist in earlier states). The budget is unchanged: every
    pass is still trained. Off: each step keeps its last weights (the paper says nothing
    either way). On by default: with ``carry_embeddings``, Step 2's model overfits pass after
    pass, and Step 3 would start from its last embeddings (docs/design/ameir-one-shot.md)."""
    probe_children: int = 4
    """Children probed after every pass with ``keep_best_one_shot`` (drawn once per step
    from their own generator, so the children the search samples are unchanged); Step 2 probes
    the fields without an interaction."""
    learning_rate: float = 1e-3
    """Adam step size of the one-shot models and of the retraining."""
    one_shot_schedule: Literal["constant", "cosine"] = "constant"
    """Step size of each one-shot model over its training: ``"constant"``, or ``"cosine"``,
    one cosine decay to zero over the step's whole one-shot budget, shared by Step 2's cycles
    (paper: "a single cosine schedule is introduced for learning rate decay")."""
    batch_size: int = 1024
    """Samples per step (paper: 1024)."""
    retrain_epochs: int = 8
    """Maximum epochs of the derived model's retraining (early stopping on validation AUC)."""
    retrain_patience: int = 2
    """Epochs without a validation-AUC gain before retraining stops."""
    keep_inherited: bool = True
    """Validate the derived model's inherited one-shot weights before retraining (epoch 0) and
    keep them when no retrained epoch beats them on validation."""
    max_parameters: int | None = None
    """Children with more parameters are never sampled in Step 3; None: no limit. The CTR
    experiment sets it to the best hand-designed baseline's parameter count, so a searched
    model is never larger."""
    executor: Literal["serial", "ray"] = "serial"
    """Where children are scored, and random search's children on a sample budget trained
    (``leanrec.runner.make_executor``): ``"serial"``, in this process, or ``"ray"``, one Ray
    task per child (needs the ``ray`` extra; a local cluster unless ``RAY_ADDRESS`` is set).
    The scores are the same either way."""
    executor_cpus_per_job: float = 1.0
    """CPUs Ray reserves per child task."""
    seed: int = 0
    """Seeds the samplers, the one-shot models and the retraining."""
    num_threads: int = 1
    """torch intra-op threads (0: leave torch's default)."""
    progress: bool | None = None
    """Show progress bars (None: only when stderr is a terminal)."""
    preset: str | None = None
    """The preset the fields were set from (:func:`apply_preset`: ``paper`` or ``leanrec``),
    recorded in ``config.json``; None: the fields as given (the defaults are ``leanrec``'s).
    What the fields amount to is :func:`preset_label`, which ``results.json`` carries."""

    def __post_init__(self) -> None:
        check_literals(self)
        _check_preset_name(self.preset, SEARCH_PRESETS)
        self.readout = check_readout(self.readout)
        if self.behavior_blocks < 0 or self.mlp_layers < 1:
            raise ValueError("behavior_blocks must be >= 0 and mlp_layers >= 1")
        if self.interactions < 0 or self.keep_per_cycle < max(1, self.interactions):
            raise ValueError("keep_per_cycle must be >= interactions >= 0")
        if self.top_children < 1 or self.sampled_children < self.top_children:
            raise ValueError("sampled_children must be >= top_children >= 1")
        if not 0.0 <= self.largest_child_share <= 1.0:
            raise ValueError(
                f"largest_child_share must lie in [0, 1], got {self.largest_child_share}"
            )
        if self.probe_children < 1:
            raise ValueError(f"probe_children must be >= 1, got {self.probe_children}")
        if self.supernet_epochs <= 0:
            raise ValueError(f"supernet_epochs must be > 0, got {self.supernet_epochs}")


@dataclass
class RetrievalSearchConfig:
    """Settings of AMEIR's Step 1 on next-item sequences
    (:func:`~leanrec.search.architecture.retrieval.search_retrieval`); the defaults are a
    CPU-sized search on Beauty."""

    embedding_dim: int = 64
    """``d``: item embeddings and hidden states."""
    n_blocks: int = 2
    """``L_a``, residual blocks (paper: 3 on Alimama)."""
    input_dropout: float = 0.3
    """Dropout on the item embeddings entering the blocks (Beauty is sparse: SASRec uses 0.5,
    our GRU4Rec 0.25; AMEIR's blocks have none of their own)."""
    positions: bool = True
    """Add a learned recency-position embedding to the scaled item embeddings (as SASRec);
    the blocks alone see order only through convolutions, pooling and the GRU."""
    final_norm: bool = True
    """LayerNorm on the hidden states before scoring (as SASRec)."""
    supernet_epochs: int = 20
    """Epochs of one-shot training (one uniformly drawn child per batch)."""
    sampled_children: int = 100
    """Children scored with inherited weights on the validation subset."""
    top_children: int = 5
    """Best children re-scored on the whole validation set (paper: top 5)."""
    validation_subset: int = 4096
    """Validation users the children are first scored on."""
    learning_rate: float = 1e-3
    """Adam step size of the one-shot model, the retraining and the experiment's baselines."""
    batch_size: int = 128
    """Training sequences per step (SASRec's 128)."""
    retrain_epochs: int = 200
    """Most epochs of the derived model's retraining."""
    retrain_patience: int = 4
    """Validations without improvement before retraining stops."""
    eval_every: int = 2
    """Validate the retrained model every this many epochs."""
    retrain_seconds: float | None = None
    """Wall-clock budget of the retraining (None: none)."""
    seed: int = 0
    """Seeds the one-shot model, the children drawn and the retraining."""
    num_threads: int = 0
    """torch intra-op threads (0: leave torch's default)."""
    preset: str | None = None
    """The preset the fields were set from (:func:`apply_preset`: ``paper`` or ``leanrec``);
    None: the fields as given (the defaults are ``leanrec``'s)."""

    def __post_init__(self) -> None:
        _check_preset_name(self.preset, RETRIEVAL_PRESETS)
        if self.top_children < 1 or self.sampled_children < self.top_children:
            raise ValueError("sampled_children must be >= top_children >= 1")


@dataclass
class ArchitectureExperiment:
    """The CTR table (AMEIR Tables 1 and 4): every hand-designed baseline and every search,
    for every seed (:func:`~leanrec.search.architecture.experiment.run_experiment`)."""

    dataset: str = "ml-1m-ctr"
    """A behaviour (CTR) dataset of the registry."""
    data_dir: str | None = None
    """Where the registry finds raw data (None: its default)."""
    out_dir: str = "runs/architecture-ml-1m-ctr"
    """The run directory (an existing one is resumed)."""
    baselines: tuple[str, ...] = HAND_DESIGNED
    """Hand-designed models of ``METHODS``, all trained before any search (Table 1)."""
    methods: tuple[str, ...] = NAS_METHODS
    """Searches of ``METHODS``, in this order (``random`` on a ``"seconds"`` budget needs
    ``ameir`` before it)."""
    seeds: tuple[int, ...] = (0, 1, 2)
    """One row per method and seed; the table gives mean ± std over them."""
    baseline_epochs: int = 8
    """Maximum epochs of a hand-designed baseline (early stopping, ``config.retrain_patience``)."""
    parameter_budget: bool = True
    """Cap the searched models at the best baseline's parameter count (the best by mean
    validation AUC over every seed with all baseline rows)."""
    random_budget: RandomBudget = "seconds"
    """What random search from scratch gets of AMEIR's search at the same seed: ``"seconds"``,
    its wall time (depends on how busy the machine is), or ``"samples"``, as many training
    samples as AMEIR's one-shot models saw (``policy.one_shot_samples``; the same on any
    machine)."""
    config: ArchitectureSearchConfig = field(default_factory=ArchitectureSearchConfig)
    """The search settings (each seed's search replaces ``seed`` and ``max_parameters``)."""

    def __post_init__(self) -> None:
        check_literals(self)
        names_as_tuples(self, "baselines", "methods")
        check_not_empty(self, "seeds")


@dataclass
class RetrievalExperiment:
    """The next-item table (AMEIR Table 2): GRU4Rec, SASRec and AMEIR's Step 1 for every seed
    (:func:`~leanrec.search.architecture.experiment.run_experiment`)."""

    dataset: str | DataFile = "beauty"
    """A per-user sequence dataset of the registry, or a file of one's own in time order
    (:class:`~leanrec.data.own.DataFile`)."""
    data_dir: str | None = None
    """Where the registry finds raw data (None: its default)."""
    out_dir: str = "runs/architecture-beauty"
    """The run directory (an existing one is resumed)."""
    baselines: tuple[str, ...] = RETRIEVAL_BASELINES
    """Hand-designed sequence models of ``NEXT_ITEM_METHODS``."""
    methods: tuple[str, ...] = RETRIEVAL_METHODS
    """Searches of ``NEXT_ITEM_METHODS``."""
    seeds: tuple[int, ...] = (0, 1, 2)
    """Split seeds (the candidate negatives) and model seeds, one row per method and seed."""
    max_length: int = 50
    """``N``, the most recent items a model reads (SASRec's 50 on Beauty)."""
    negative_sampling: NegativeSampling = "uniform"
    """Negatives of the selection/report protocol; the other kind is scored on test too."""
    baseline_epochs: int = 200
    """Maximum epochs of a baseline (early stopping on validation NDCG@5)."""
    baseline_seconds: float | None = None
    """Wall-clock budget per baseline (None: none)."""
    config: RetrievalSearchConfig = field(default_factory=RetrievalSearchConfig)
    """The search settings; the baselines take its width, step size, batch, patience and
    validation cadence too."""

    def __post_init__(self) -> None:
        check_literals(self)
        names_as_tuples(self, "baselines", "methods")
        check_not_empty(self, "seeds")


# ------------------------------------------------------------------------------ presets
LEANREC_ADDITIONS: dict[str, dict[str, Any]] = {
    "fm_term": {"fm_shortcut": False},
    "carried_embeddings": {"carry_embeddings": False},
    "keep_best": {"keep_best_one_shot": False},
    "largest_child": {"largest_child_share": 0.0},
    "keep_inherited": {"keep_inherited": False},
    "mean_readout": {"readout": ("sum", "last", "attention")},
    "constant_step": {"one_shot_schedule": "cosine"},
    "short_evolution": {"evolution_cycles": 4, "keep_per_cycle": 50},
}
"""Each of leanrec's departures from AMEIR's paper in :class:`ArchitectureSearchConfig`, as the
field values that turn it off alone (the paper's values). ``fm_term``: DeepFM's parameter-free
pairwise term added to every model's logit; ``carried_embeddings``: each step's one-shot model
starts from the previous step's field embeddings; ``keep_best``: every one-shot model goes
back to its best-probed pass; ``largest_child``: Step 3 trains the largest MLP on half of its
batches (the paper samples children uniformly); ``keep_inherited``: the derived model's
inherited weights count as retraining epoch 0; ``mean_readout``: mean pooling instead of the
paper's ``[sum, last, attention]``; ``constant_step``: a constant one-shot step size instead of
the paper's single cosine schedule; ``short_evolution``: 3 cycles keeping 20 interactions
instead of 4 keeping 50 (a compute cut). The paper gives none of the first five either way
except where it says so (docs/design/ameir-one-shot.md)."""

SEARCH_PRESETS: dict[str, dict[str, Any]] = {
    "leanrec": {
        "fm_shortcut": True,
        "carry_embeddings": True,
        "keep_best_one_shot": True,
        "largest_child_share": 0.5,
        "keep_inherited": True,
        "readout": ("mean",),
        "one_shot_schedule": "constant",
        "evolution_cycles": 3,
        "keep_per_cycle": 20,
    },
}
SEARCH_PRESETS["paper"] = {
    **SEARCH_PRESETS["leanrec"],
    **{name: value for change in LEANREC_ADDITIONS.values() for name, value in change.items()},
    "behavior_blocks": 3,
}
"""Field values over :class:`ArchitectureSearchConfig` per preset. ``leanrec``: the defaults
(every addition of :data:`LEANREC_ADDITIONS` on); it leaves ``behavior_blocks`` as given (the
ML-1M CTR headline passes 0, which skips Step 1). ``paper``: all three steps (``L_a = 3``
behaviour blocks searched), no FM term, the ``[sum, last, attention]`` readout, 4 cycles
keeping the top 50 interactions, a cosine one-shot schedule, uniform children, no carried
embeddings, the last one-shot weights kept, the derived model retrained from its inherited
weights without counting them as an epoch. Both keep the budgets (``sampled_children``,
``supernet_epochs``, ``validation_subset``; the paper samples 2,000 children on a GPU) and the
data's settings (``embedding_dim``, ``learning_rate``) as given."""

RETRIEVAL_ADDITIONS: dict[str, dict[str, Any]] = {
    "positions": {"positions": False},
    "final_norm": {"final_norm": False},
    "input_dropout": {"input_dropout": 0.0},
}
"""leanrec's additions to the next-item backbone of :class:`RetrievalSearchConfig`, as the field
values that turn each off alone: SASRec's learned position embedding, a final LayerNorm, and
dropout on the item embeddings entering the blocks (AMEIR's blocks have none of these)."""

RETRIEVAL_PRESETS: dict[str, dict[str, Any]] = {
    "leanrec": {"positions": True, "final_norm": True, "input_dropout": 0.3, "n_blocks": 2},
}
RETRIEVAL_PRESETS["paper"] = {
    **RETRIEVAL_PRESETS["leanrec"],
    **{name: value for change in RETRIEVAL_ADDITIONS.values() for name, value in change.items()},
    "n_blocks": 3,
}
"""Field values over :class:`RetrievalSearchConfig` per preset: ``leanrec``, the defaults;
``paper``, the blocks alone (``L_a = 3``) on the scaled item embeddings."""

SearchConfigT = TypeVar("SearchConfigT", ArchitectureSearchConfig, RetrievalSearchConfig)


def _tables(
    config: ArchitectureSearchConfig | RetrievalSearchConfig,
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """``(presets, additions)`` of the config's class."""
    if isinstance(config, RetrievalSearchConfig):
        return RETRIEVAL_PRESETS, RETRIEVAL_ADDITIONS
    return SEARCH_PRESETS, LEANREC_ADDITIONS


def _check_preset_name(preset: str | None, presets: dict[str, dict[str, Any]]) -> None:
    if preset is not None and preset not in presets:
        raise ValueError(f"unknown preset {preset!r}; choose from {sorted(presets)}")


def apply_preset(
    config: SearchConfigT, preset: str, without: tuple[str, ...] = (), **overrides: Any
) -> SearchConfigT:
    """``config`` with the fields of ``preset`` set over it, then each addition named in
    ``without`` turned off, then ``overrides`` (an explicit value beats the preset's); every
    other field (budgets, seed, threads) is kept.

    Example::

        paper = apply_preset(ArchitectureSearchConfig(supernet_epochs=6), "paper")
        no_fm = apply_preset(ArchitectureSearchConfig(), "leanrec", without=("fm_term",))

    Raises:
        ValueError: an unknown preset, addition or field.
    """
    values = preset_values(*_tables(config), preset, without)
    values.update(overrides)
    return dataclasses.replace(config, **values, preset=preset)


def additions_on(config: ArchitectureSearchConfig | RetrievalSearchConfig) -> list[str]:
    """The additions whose fields differ from the paper's values."""
    _, additions = _tables(config)
    return [name for name, change in additions.items() if not _holds(config, change)]


def preset_label(config: ArchitectureSearchConfig | RetrievalSearchConfig) -> str:
    """What the fields amount to: ``paper`` or ``leanrec`` when every field of that preset
    holds; ``paper with <field>=<value>`` when every addition is off but another field of the
    paper preset was set over it (e.g. ``behavior_blocks=0``); ``leanrec without
    <additions>`` when only some of leanrec's additions are off; else ``custom (<additions
    on>)``. Derived from the fields, so a value set over a preset shows."""
    presets, additions = _tables(config)
    for name, values in presets.items():
        if _holds(config, values):
            return name
    off = [name for name, change in additions.items() if _holds(config, change)]
    if len(off) == len(additions):
        changed = [
            f"{k}={getattr(config, k)!r}"
            for k, v in presets["paper"].items()
            if _comparable(getattr(config, k)) != _comparable(v)
        ]
        return "paper with " + ", ".join(changed)
    rest = {
        field_name: value
        for field_name, value in presets["leanrec"].items()
        if not any(field_name in additions[name] for name in off)
    }
    if off and _holds(config, rest):
        return "leanrec without " + ", ".join(off)
    return f"custom ({', '.join(additions_on(config)) or 'no additions'})"


def _holds(config: Any, values: dict[str, Any]) -> bool:
    return all(_comparable(getattr(config, k)) == _comparable(v) for k, v in values.items())


def _comparable(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value
