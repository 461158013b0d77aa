"""Configuration of AMEIR's three-step one-shot random search (Zhao et al., IJCAI 2021)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from leanrec.models.ctr.ameir.architecture import check_readout
from leanrec.options import check_literals


@dataclass
class ArchitectureSearchConfig:
    """Everything one search needs; the paper's value is noted where the paper gives one.

    The paper trains on GPUs with 2,000 sampled children per step; the defaults here are cut so
    that the three steps together cost a few DeepFM trainings on one CPU core (issue goal:
    <= 3x), and every cut is a field.
    """

    embedding_dim: int = 16
    """``K``, width of every field embedding (paper: 4 on Alimama; our CTR baselines use 16)."""
    behavior_blocks: int = 3
    """``L_a``, residual building blocks of the behaviour network (paper: 3)."""
    mlp_layers: int = 2
    """``L_c``, hidden layers of the aggregation MLP (paper: 2)."""
    readout: tuple[str, ...] = ("mean",)
    """Parts of the behaviour readout ``h^a`` (``space.READOUT_PARTS``; paper: ``("sum", "last",
    "attention")``). Mean pooling alone is the default because it generalises better on ML-1M
    CTR (``benchmarks/ameir_readout.py``): the same network without blocks, trained from
    scratch, validated at AUC 0.7924 after 3 epochs with the paper's readout, 0.7953 with mean
    instead of sum pooling, and 0.7996 with mean pooling alone (DNN in the same run: 0.7993);
    the last-state and target-attention parts fit the training set faster and validate worse,
    as DIN does against DNN. Children with inherited weights cannot tell these apart after one
    supernet epoch, so this is a setting, not a searched choice."""
    fm_shortcut: bool = True
    """Backbone option: add the FM pairwise term ``Σ_{i<j} <q_i, q_j>`` over the fields, the
    kept interactions and the pooled history to every model's logit (no parameters). The paper
    keeps this in its backbone analysis: searched interactions "applied to MLP and FM" improve
    a DNN in orthogonal ways, and its AMEIR-I is a DeepFM backbone with searched interactions.
    It is a setting, like ``readout``, not a searched choice. On by default because it
    validates higher on ML-1M CTR (3 seeds, no Stage 1, with ``carry_embeddings``): mean
    validation AUC 0.8121 against 0.8067 without either option (README)."""
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
    with inherited weights than they train to. ML-1M CTR, seed 0, uniform sampling: Step 3
    picked widths (67, 22) of 224, which trained from scratch plateaued at validation AUC
    0.793 (train loss 0.531) where DNN reaches 0.799 after 3 epochs."""
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
    derived model; it does not say whether steps pass weights on). On by default: on ML-1M CTR
    with ``fm_shortcut`` (3 seeds) it validates at 0.8121 against 0.8091 without it."""
    keep_best_one_shot: bool = True
    """Early stopping for the one-shot models: after every pass over the training samples, probe
    the one-shot model (mean AUC of ``probe_children`` fixed children on the validation subset)
    and, at the end of the step, go back to its best-probed state. Steps 1 and 3 and the
    single-stage baseline score their children with that state, and Step 2 passes on the field
    embeddings of its best pass (its interactions are still ranked with its last weights, since
    later cycles' candidates do not exist in earlier states). The budget is unchanged: every
    pass is still trained. Off: each step keeps its last weights (the paper says nothing
    either way). On ML-1M CTR with ``carry_embeddings``, Step 2's model gets worse pass after
    pass (seed 3: best candidate's subset AUC 0.8045 after its first cycle, 0.8014 after its
    third), and those last embeddings were what Step 3 started from. On by default: over 5
    seeds AMEIR validates at 0.8114 ± 0.0009 with it against 0.8110 ± 0.0015 without it
    (README)."""
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
    """Children with more parameters are never sampled in Step 3 (the issue asks for no more
    parameters than the best hand-designed baseline); None: no limit."""
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
