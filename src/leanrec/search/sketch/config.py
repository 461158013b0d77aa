"""Configuration of learned sketching (DiPS, Ghosh, Mitra & Lan, AAAI 2022) and its experiment.

Where a default is not the paper's, the measurement behind it is in
``docs/design/dips-training.md``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from leanrec.data.own import DataFile
from leanrec.options import check_literals

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

    def __post_init__(self) -> None:
        if self.sketch_size < 1:
            raise ValueError(f"sketch_size K must be >= 1, got {self.sketch_size}")
        if self.update_period < 1:
            raise ValueError(f"update_period τ must be >= 1, got {self.update_period}")
        if self.queue_size < 1:
            raise ValueError(f"queue_size Q must be >= 1, got {self.queue_size}")


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
