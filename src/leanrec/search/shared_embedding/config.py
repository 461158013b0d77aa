"""Configuration of AutoAssign+ (shared embedding assignment in streaming recommendation,
arXiv 2308.06965) and of its experiment.

The paper's summary gives the mechanism (``k`` shared levels, ascend / unchanged / descend,
reward ``R = 1/T Σ L_t − L``, TD critic, importance-sampled actor) but few sizes; where it is
silent the default is a choice, given with its reason here and discussed in the design notes.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

from leanrec.data.own import DataFile
from leanrec.options import check_literals, check_not_empty, names_as_tuples
from leanrec.search.streams import default_trainer
from leanrec.train.stream import StreamTrainerConfig

DEFAULT_METHODS: tuple[str, ...] = (
    "all_unique",
    "threshold",
    "hashing",
    "qr",
    "lfu",
    "lru",
    "threshold_hierarchy",
    "autoassign",
    "autoassign_leanrec",
)
"""Every method, in the order of :data:`~leanrec.search.shared_embedding.baselines.METHODS`."""


@dataclass
class AutoAssignConfig:
    """The Identity Agent, its critic and the hierarchy it moves IDs in."""

    levels: int = 3
    """``k``: shared levels in front of the unique rows (the paper's hierarchy size is not in
    the summary; 3 gives new, rare and warming IDs a level each)."""
    reward_window: int = 5
    """``T`` of ``R = 1/T Σ L_t − L``: an ID's last ``T`` chunk losses (not given; 5 chunk
    appearances smooth one noisy chunk without remembering a stale assignment for long)."""
    actor_hidden: int = 32
    """Width of the actor's two hidden layers (the state is a handful of features)."""
    critic_hidden: int = 32
    """Width of the critic's two hidden layers."""
    actor_learning_rate: float = 1e-3
    """Adam step size of the actor (Adam's usual default; not given in the paper)."""
    critic_learning_rate: float = 1e-3
    """Adam step size of the critic."""
    discount: float = 0.9
    """``γ`` of the TD target: a decision pays off over the next few appearances of the ID."""
    target_rate: float = 0.01
    """Polyak rate of the target critic (stabilises TD on a drifting stream)."""
    replay_size: int = 10_000
    """Transitions the replay buffer keeps (a few chunks' decisions of two fields; bounded
    agent memory reported beside the embedding bytes)."""
    importance_clip: float = 2.0
    """``c``: importance ratios ``π_new / π_old`` are truncated at ``c`` (bounded variance)."""
    exploration: float = 0.05
    """``ε``: decisions are sampled from ``(1 − ε) π + ε / 3``, so every action keeps a
    probability of at least ``ε / 3`` and the importance ratio stays bounded (small: every
    exploratory descent from a unique row loses that row)."""
    entropy_bonus: float = 0.01
    """``β``: entropy weight in the actor loss (keeps the policy from collapsing early)."""
    initial_logits: tuple[float, float, float] = (-3.0, 0.0, 1.0)
    """The actor's starting logits for (descend, unchanged, ascend): probabilities about
    (0.01, 0.27, 0.72), so an ID climbs to its own row after a few appearances unless the
    agent learns otherwise. A uniform start descends a third of the unique IDs every chunk,
    and a descent from the unique position throws the learnt row away (not in the paper
    summary; see the design notes)."""
    updates_per_chunk: int = 4
    """Critic steps, then actor steps, per chunk (the three updates alternate per chunk)."""
    batch_size: int = 256
    """Transitions per critic / actor step."""
    max_bytes: int | None = None
    """Hard cap on embedding bytes (tables plus the agent's per-ID state); the lowest-value
    unique IDs are demoted first. None: unbounded, as in the paper."""
    seed: int = 0
    """Seeds the agent's networks and its action sampling (the experiment sets it per seed)."""
    reward: Literal["paper", "advantage"] = "paper"
    """``paper``: ``R = 1/T Σ L_t − L`` as is. ``advantage``: the same ``R`` minus its mean
    over the chunk's closing decisions of the same field taken at the same position. Every
    ID's loss falls while the base model learns, whatever the action; the paper's ``R`` carries
    that common drift, which the subtraction cancels while the differences between actions
    taken at one position stay (:func:`~leanrec.search.shared_embedding.policy.advantage`)."""

    descend_from_unique: bool = True
    """True (the paper): descending from the unique position frees the ID's row. False: an ID
    that holds a row keeps it; a sampled descent there is taken as "unchanged" and recorded
    so, with behaviour probability ``b(descend) + b(unchanged)`` (a learnt row is never thrown
    away; bytes can then only be saved by not promoting). Idle decisions (:attr:`idle_after`)
    may still free the row of an ID that is not in use."""

    history: Literal["window", "ema"] = "window"
    """Per-ID agent state. ``window`` (the paper): the last ``T`` losses in a float16 ring and
    an open decision holding its state (``2T + 13`` bytes per ID). ``ema``: one float16
    exponential mean of the ID's losses (weight ``2 / (T + 1)``, the EMA whose centre of mass
    matches a ``T``-window mean), the chunk it was last seen in, and a compact open decision:
    9 bytes per ID (:class:`~leanrec.search.shared_embedding.policy.LeanRecords`). The state
    then holds the time since the ID was last seen instead of the current loss."""
    idle_after: int = 0
    """Idle decisions (``history="ema"`` only): every :attr:`sweep_every` chunks, every ID not
    seen for at least this many chunks decides too (descending from the unique position frees
    its row). 0: no idle decisions, as in the paper, where only the IDs of a chunk decide and
    a row of an ID that stopped appearing is never freed."""
    sweep_every: int = 10
    """Chunks between idle decisions."""
    byte_penalty: float = 0.0
    """``λ``: the reward of a decision loses ``λ`` per chunk that the ID holds a unique row
    after it, until the decision closes (next appearance or next idle decision):
    ``R = loss term − λ · held · chunks``. In loss units per row and chunk; 0: the reward sees
    no bytes (the paper)."""
    idle_logits: tuple[float, float, float] = (0.0, 0.0, 0.0)
    """Fixed offsets added to the actor's logits for idle decisions (descend, unchanged,
    ascend), through a flag feature of the state: the prior of an idle decision can differ
    from that of an ID in the chunk (e.g. an idle ID should not ascend)."""
    shared_learning_rate: float = 0.0
    """> 0: after each chunk is predicted, and before the moves, the shared vectors take one
    Adam step of this size on the chunk's events that read a shared vector (their own
    optimiser; a stream table optimiser such as Adagrad accumulates every event's squared
    gradient into a shared vector and all but freezes it). 0: the shared vectors are trained
    by the table optimiser only, as any row (the paper preset)."""

    appearance_decisions: bool = True
    """True (the paper): every ID of a chunk decides. False (with idle decisions): an ID in
    the chunk ascends by rule, with no decision (``k = 1``: its own row on first sight, kept
    while it appears), and the agent decides for idle IDs only; an idle decision's episode
    ends when the ID appears again (a terminal transition with the loss term)."""
    promoted_init: Literal["shared", "random"] = "shared"
    """A row given on ascent starts as ``shared`` (the paper: the shared vector the ID had, so
    its prediction does not jump) or ``random`` (``N(0, init_std)``, as an all-unique row:
    every new row then starts different, not as one common vector)."""

    idle_offers: Literal["all_idle", "holders"] = "all_idle"
    """Who an idle round offers a decision to. ``all_idle``: every ID unseen for at least
    :attr:`idle_after` chunks, at every round (a sweep over all IDs seen: its cost grows with
    them). ``holders``: only IDs that hold a unique row, once when they become idle (idle for
    :attr:`idle_after` chunks) and again, while they keep the row, each time their idle time
    doubles (``2·idle_after``, ``4·idle_after``, ...). The IDs to offer are queued per round
    as the chunks are observed, so a round costs the IDs it offers, not the IDs seen."""
    park: bool = False
    """A demoted ID's row is parked as int8 with a per-row scale (``d + 4`` bytes) instead of
    freed, and an ID that ascends again resumes from it
    (:class:`~leanrec.embeddings.HierarchicalSharedEmbedding` ``park``). False: a descent from
    the unique position frees the row (the paper)."""
    park_values: Literal["int8", "float16"] = "int8"
    """With :attr:`park`: a parked row's values as int8 with one float16 scale per row
    (``d + 2`` bytes) or as float16 (``2d`` bytes, no rounding a returning row would notice)."""
    park_state: Literal["mean", "profile", "log8", "columns"] = "mean"
    """With :attr:`park`: a parked row's Adagrad state as the float16 mean of its columns' sums
    (2 bytes; every column resumes at the mean) or every column's sum in bfloat16 (``2d``
    bytes; each column resumes at its own step size), ``log8``: every column's sum on a log
    scale, one uint8 each below the row's largest sum (``d + 2`` bytes, within 4% per sum), or
    ``profile``: the row's mean (2 bytes) times a per-table profile of the columns' shares (a
    first-order weight's sums are an order of magnitude above a vector column's)."""
    fresh_accumulator: float = 0.0
    """``a_0``: where a new row's Adagrad sum of squared gradients starts (a resumed parked row
    starts at its own). 0 (Adagrad's default): a new row's first step is ``lr · sign(g)`` on
    every column, whatever the gradient's size."""

    residual_until: int = 0
    """``N``: an ID holding a row with fewer than ``N`` events reads level ``k``'s shared
    vector plus its own row, which is a residual over it; at its ``N``-th event the vector is
    folded into the row, which then stands alone
    (:class:`~leanrec.embeddings.HierarchicalSharedEmbedding` ``residual_until``). The shared
    vector learns from every young ID's events, and a new ID, before its first chunk is
    learnt, reads that vector instead of an untrained one. 0: rows are read alone (the
    paper)."""

    side_groups: tuple[str, ...] = ()
    """Fields (``"user"``, ``"item"``) whose hierarchy's level 1 holds one vector per group of
    IDs alike in their side features (:mod:`~leanrec.search.shared_embedding.side`: a user's
    age bucket and gender, a movie's first genre), so a new ID reads, and with
    ``promoted_init="shared"`` starts its row from, the vector of IDs like it. Needs a stream
    whose events carry the groups (the experiment adds them where the dataset has side files;
    elsewhere every ID is ungrouped and reads level 1's one vector). Empty: one level-1 vector
    per field (the paper)."""
    group_update: Literal["mean", "fitted"] = "mean"
    """With :attr:`side_groups`, how a group's vector learns. ``mean``: after each chunk is
    learnt, it moves towards the mean of what the chunk's IDs of that group with at least
    :attr:`group_min_count` events read now (their rows), by :attr:`group_rate` (a running
    mean of its members' rows; at first the plain mean of every member seen). ``fitted``:
    the shared vectors' own optimiser (:attr:`shared_learning_rate`) steps them on the events
    that read them, as level 1's one vector."""
    group_rate: float = 0.01
    """``ρ`` of ``group_update="mean"``: a group's vector moves ``max(ρ, m / M)`` of the way
    to the mean of a chunk's ``m`` members (``M``: members counted so far)."""
    group_min_count: int = 5
    """Events an ID must have had for its row to count in its group's mean (a younger row is
    mostly its random start)."""

    def __post_init__(self) -> None:
        check_literals(self)
        if not 0.0 < self.group_rate <= 1.0 or self.group_min_count < 0:
            raise ValueError("need 0 < group_rate <= 1 and group_min_count >= 0")
        if self.residual_until < 0:
            raise ValueError(f"residual_until must be >= 0, got {self.residual_until}")
        if self.idle_after < 0 or self.sweep_every < 1:
            raise ValueError("need idle_after >= 0 and sweep_every >= 1")
        if self.idle_after and self.history != "ema":
            raise ValueError('idle decisions (idle_after > 0) need history="ema"')
        if not self.appearance_decisions and not self.idle_after:
            raise ValueError("appearance_decisions=False needs idle decisions (idle_after > 0)")
        if not 1 <= self.levels <= 126:
            raise ValueError(f"levels k must be in 1..126, got {self.levels}")
        if self.reward_window < 1 or self.reward_window > 255:
            raise ValueError(f"reward_window T must be in 1..255, got {self.reward_window}")
        if self.importance_clip <= 0 or not 0 < self.exploration <= 1:
            raise ValueError("need importance_clip > 0 and 0 < exploration <= 1")


AGENT_PRESETS: dict[str, dict[str, Any]] = {
    "paper": {},
    "leanrec": {
        "initial_logits": (-8.0, -4.0, 4.0),
        "exploration": 0.001,
        "entropy_bonus": 0.0,
        "reward": "advantage",
        "descend_from_unique": False,
        "appearance_decisions": False,
        "promoted_init": "random",
        "history": "ema",
        "idle_after": 1,
        "sweep_every": 1,
        "idle_offers": "holders",
        "park": True,
        "park_state": "profile",
        "fresh_accumulator": 1e-6,
        "idle_logits": (7.0, 4.0, -10.0),
        "byte_penalty": 0.3,
        "shared_learning_rate": 0.003,
    },
}
"""Field values over :class:`AutoAssignConfig` per preset. ``paper``: the paper's mechanism
with the defaults above. ``leanrec`` (the design notes give the warm-up figures that chose it):

- an ID in the chunk gets a row on its first appearance (prior about 99.97% ascend, ε =
  0.001) and keeps it while it appears (``descend_from_unique=False``): on the ML warm-ups
  every appearance decision that left an ID shared, or freed a row in use, cost AUC;
- rows are parked instead, by idle decisions: an ID that holds a row and was not in the last
  chunk decides (and again each time its idle time doubles while it keeps the row; prior about
  27% descend, 73% keep), with the compact ``ema`` state (9 bytes per ID) that holds how long
  the ID has been idle; a descent parks the row as int8 (``d + 4`` bytes), and the ID resumes
  from it when it comes back (``idle_after = 1`` had the fewest warm-up bytes among the
  settings within 0.002 of all-unique's warm-up AUC on ML-1M and ML-100K), with its
  optimiser state as its mean times a per-table column profile (``park_state="profile"``:
  a first-order weight's Adagrad sums are an order of magnitude above a vector column's, so
  one mean for all columns gave the returning rows the wrong step sizes);
- a new row's Adagrad sum starts at ``a_0 = 1e-6`` (``fresh_accumulator``), about one
  event's squared gradient on a vector column, so its first steps follow the gradient instead
  of being ``lr · sign(g)`` on every column (chosen with the profile on both warm-ups: the
  largest mean gain in AUC plus cold AUC over all-unique's, among settings that add no bytes
  per parked row);
- the reward pays ``λ = 0.3`` per chunk a float row is held (the largest λ of {0, 0.001,
  0.003, 0.01, 0.03, 0.1, 0.3} whose warm-up AUC stayed within 0.002 of all-unique's; above
  0.3 the byte term outweighs any loss term, so the agent learns to park every idle row and
  the bytes do not depend on the seed), and the advantage reward cancels the common drift of
  the loss term;
- level 1's vector, which every ID reads before its first chunk is learnt, takes one Adam
  step of 0.003 per chunk on the chunk's events that read it (``shared_learning_rate``;
  chosen on both warm-ups among {0, 0.003, 0.01}, 0.001 on ML-100K's only; a gain within the
  seeds' noise there): a new ID is predicted from a vector fitted to new IDs' events instead
  of an untrained one;
- level 1 is not keyed by side features (``side_groups`` empty, the switch off): keyed by the
  users' age and gender, as the running mean of each group's rows, it gained on both warm-ups
  and lost on both full streams (the design notes give both);
- a promoted row starts at random, as an all-unique row, not at the shared vector;
- no entropy bonus (from a confident prior it pulls towards uniform)."""


def agent_preset(config: AutoAssignConfig, preset: str) -> AutoAssignConfig:
    """``config`` with the fields of ``preset`` (:data:`AGENT_PRESETS`) set over it."""
    if preset not in AGENT_PRESETS:
        raise ValueError(f"unknown agent preset {preset!r}; choose from {sorted(AGENT_PRESETS)}")
    return dataclasses.replace(config, **AGENT_PRESETS[preset])


@dataclass
class SharedEmbeddingExperiment:
    """One table: every method on one stream, one base model, prequential metrics and bytes."""

    dataset: str | DataFile = "ml-1m-partial"
    """Registry dataset streamed in time order (``ml-100k``, ``ml-1m-partial``), or in file
    order with :attr:`order` ``"file"`` (the Criteo/Avazu samples have no event times); or a
    table of one's own with a rating column (:class:`~leanrec.data.own.DataFile`)."""
    order: Literal["time", "file"] = "time"
    """Event order: by timestamp (ties keep file order), or the file's own order."""
    max_events: int | None = None
    """Read only the first ``max_events`` events of the dataset, in stream order (a quick run
    or a test on a prefix; warm-up and chunks are then cut from the prefix). None: every
    event."""
    data_dir: str | None = None
    """Where the datasets are (None: the registry's default)."""
    out_dir: str = "runs/shared-embedding-ml-1m-partial"
    """The run directory (an existing one is resumed)."""
    model: str = "deepfm"
    """Base model: a :mod:`leanrec.models.ctr` model (``deepfm``, ``dnn``) or ``neumf``."""
    embedding_dim: int = 16
    """``d`` of every ID vector (16: the protocol constant)."""
    model_options: dict[str, Any] = field(default_factory=dict)
    """Other fields of the base model's config (e.g. ``mlp_dims``)."""
    init_std: float = 0.01
    """Std of new rows and shared vectors (N(0, 0.01) matched 1e-4 on the ML-1M warm-up)."""
    objectives: tuple[str, ...] = ("bce",)
    """``bce`` (AUC, log loss, accuracy) and/or ``mse`` (rating MSE; streams with ratings)."""
    chunk_size: int = 1000
    """Events per chunk (predict, then learn)."""
    warmup_fraction: float = 0.2
    """Leading share of the stream for training and for every choice; never reported."""
    validation_fraction: float = 0.25
    """Share of the warm-up (its end) on which knobs are scored prequentially."""
    methods: tuple[str, ...] = DEFAULT_METHODS
    """Methods to run, names of :data:`~leanrec.search.shared_embedding.baselines.METHODS`."""
    seeds: tuple[int, ...] = (0, 1, 2)
    """Seeds vary the initialisation and the agent, never the stream order."""
    curves: bool = False
    """Run every knob of a method over the whole stream (the bytes/quality curves); False:
    only the knob chosen on the warm-up."""
    threshold_grid: tuple[int, ...] = (2, 5, 10, 20)
    """Frequency threshold ``n`` (an ID's own row after ``n`` events)."""
    size_grid: tuple[float, ...] = (0.125, 0.25, 0.5, 1.0)
    """Hashing buckets ``B``, QR slots and LFU/LRU capacities ``C``, as shares of the IDs a
    field has by the end of the warm-up (nothing after it sizes them)."""
    hierarchy_grid: tuple[int, ...] = (5, 10, 20, 50)
    """Events ``t_k`` after which the fixed-threshold hierarchy gives an ID its own row; the
    ``k`` level thresholds are spread evenly below it."""
    levels_grid: tuple[int, ...] = (1, 2, 3)
    """AutoAssign+'s ``k`` values tried on the warm-up (ML users rate in sessions: with one
    step per appearance, ``k = 1`` gives an ID its row on its second appearance at most)."""
    agent: AutoAssignConfig = field(default_factory=AutoAssignConfig)
    """The Identity Agent (``levels`` is set per knob, ``seed`` per seed)."""
    trainer: StreamTrainerConfig = field(default_factory=default_trainer)
    """The base model's training, the same for every method (``objective`` is set per row)."""
    checkpoint_every: int = 10
    """A running row checkpoints every this many chunks (a killed run resumes from there)."""
    log_every: int = 50
    """A progress line every this many chunks."""
    num_threads: int = 1
    """torch intra-op threads (0: leave torch's default)."""
    executor: Literal["serial", "ray"] = "serial"
    """Where the warm-up scores and the rows run (``leanrec.runner.search_executor``):
    ``"serial"``, one after another in this process, or ``"ray"``, one job each (the same rows)."""
    executor_cpus_per_job: float = 1.0
    """CPUs Ray reserves per job (with ``num_threads`` torch threads inside it)."""

    def __post_init__(self) -> None:
        check_literals(self)
        names_as_tuples(self, "methods")
        check_not_empty(self, "methods", "seeds")
        bad = [o for o in self.objectives if o not in ("bce", "mse")]
        if bad or not self.objectives:
            raise ValueError(f"objectives must be 'bce' and/or 'mse', got {self.objectives}")
        if self.chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {self.chunk_size}")
        for name in ("warmup_fraction", "validation_fraction"):
            value = getattr(self, name)
            if not 0.0 < value < 1.0:
                raise ValueError(f"{name} must be in (0, 1), got {value}")
        if self.max_events is not None and self.max_events < 1:
            raise ValueError(f"max_events must be >= 1 (or None: every event), got "
                             f"{self.max_events}")  # fmt: skip
