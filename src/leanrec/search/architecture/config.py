"""Configuration of AMEIR (Zhao et al., IJCAI 2021) and of its two experiments.

* :class:`ArchitectureSearchConfig`: the three-step one-shot random search on CTR samples;
* :class:`RetrievalSearchConfig`: its Step 1 alone on next-item sequences (the paper's
  sequential scenario);
* :class:`ArchitectureExperiment`: Tables 1 and 4 (ML-1M CTR), hand-designed baselines against
  AMEIR and two NAS baselines, the searches capped at the best baseline's parameter count;
* :class:`RetrievalExperiment`: Table 2 (Amazon Beauty next-item retrieval).

Why the defaults are what they are, with the runs behind them: ``docs/design/ameir-one-shot.md``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from leanrec.data.own import DataFile
from leanrec.data.sequential import NegativeSampling
from leanrec.models.ctr.ameir.architecture import check_readout
from leanrec.options import check_literals

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

    def __post_init__(self) -> None:
        check_literals(self)
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
