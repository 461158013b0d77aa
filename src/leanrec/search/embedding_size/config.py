"""Configuration of the embedding size search (CIESS, Qu et al. SIGIR 2023) and its retraining."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from leanrec.options import check_literals
from leanrec.rl.td3 import TD3Config
from leanrec.train.bpr import TrainerConfig


def default_pretrain() -> TrainerConfig:
    return TrainerConfig(
        max_epochs=300,
        batch_size=8192,
        learning_rate=0.01,
        n_negatives=4,
        l2=1e-4,
        eval_every=5,
        patience=4,
        lr_decay=0.3,
        valid_metric="recall@20",
        ks=[5, 10, 20],
    )


def default_retrain() -> TrainerConfig:
    return TrainerConfig(
        max_epochs=200,
        batch_size=8192,
        learning_rate=0.005,
        n_negatives=4,
        l2=1e-4,
        eval_every=2,
        patience=3,
        lr_decay=0.3,
        valid_metric="recall@20",
        ks=[5, 10, 20],
    )


@dataclass
class CIESSConfig:
    """Everything the search needs; paper defaults noted where the paper gives one."""

    max_dim: int = 128
    """``d_max``: full embedding size and upper end of the action space ``[1, d_max]``."""
    episodes: int = 30
    """``M``, search episodes (paper: 30)."""
    iterations: int = 10
    """``T``, iterations per episode (paper: 10)."""
    reward_lambda: float = 0.4
    """``λ`` of the reward ``r = q - λ (d / d_max)^2`` (Eq. 10; paper: 0.4 on ML-1M, 0.2 Yelp).
    With :attr:`reward_lambda_final` set, the ``λ`` of the first episode."""
    reward_lambda_final: float | None = None
    """``λ`` of the last episode, for a search that sweeps the budget (not in the paper;
    None: ``λ`` stays :attr:`reward_lambda`, the paper's rule). ``λ`` then grows geometrically
    from episode 1 to episode ``M`` (:func:`.policy.reward_lambda_at`), and the rewards already
    in the replay buffers are relabelled to the current ``λ`` (Eq. 10 is known:
    ``r = q' - λ (d / d_max)^2`` with ``q'`` from the next state). A fixed ``λ`` settles the
    search at one sparsity; the paper's ML-1M search reaches 90% and 95% only in later episodes
    (its Fig. 5), so one search serves all three budgets. When a converged warm start makes
    ``q`` size-sensitive, a fixed ``λ = 0.4`` settles near 65% and never visits them."""
    eval_ks: tuple[int, ...] = (5, 10, 20)
    """``K`` of the quality ``eval`` (Eq. 8): mean of Recall@k and NDCG@k over these k."""
    item_quality: Literal["users", "hits"] = "users"
    """``eval(e_i)`` of an item: ``users``, the paper's Eq. 9 (mean eval of the item's training
    users), or ``hits``, the item's own validation retrieval (share of its validation pairs in
    the top-k, averaged over ``eval_ks``; Eq. 9 where it has none). Eq. 9 hardly depends on the
    item's own size, so under ``λ (d/d_max)^2`` the search starves items; ``hits`` is the
    alternative that does."""
    noise: Literal["gaussian", "ou", "uniform"] = "gaussian"
    """Exploration noise of Eq. 11: ``gaussian`` (G), ``ou`` (OU) or ``uniform`` (U)."""
    noise_sigma: float = 6.0
    """``σ`` of the exploration noise (paper: 6)."""
    random_walk: bool = True
    """Explore by random walk and let the critic pick (Eq. 12-14); off for the ablation."""
    walk_length: int = 5
    """Random-walk length ``|Z|`` (paper: 5)."""
    walk_threshold: int = 5
    """Largest random-walk step ``t`` (paper: 5)."""
    td3: TD3Config = field(default_factory=TD3Config)
    """Actor/critic hyper-parameters (separate agents for users and items share them)."""
    updates_per_iteration: int = 100
    """TD3 gradient steps per agent after each iteration (Algorithm 1, line 13-14)."""
    rl_batch_size: int = 512
    """Transitions per TD3 step."""
    replay_capacity: int = 1_000_000
    """Transitions kept per agent."""
    inner_batches: int = 8
    """BPR steps under each iteration's mask (Algorithm 1, line 10). The paper trains 5 epochs
    from scratch; we fine-tune a warm start (see :attr:`warm_start`) for a bounded budget."""
    inner_batch_size: int = 32768
    """Triples per inner BPR step: large batches amortise graph propagation."""
    inner_learning_rate: float = 0.005
    """Adam step size of the inner fine-tuning."""
    inner_negatives: int = 1
    """Negatives per positive in inner steps."""
    warm_start: bool = True
    """Start every iteration from a full-size model pretrained with prefix dropout (every
    prefix of every row trained to stand alone), instead of from scratch (paper). This is what
    makes a few batches per iteration a faithful quality signal."""
    pretrain: TrainerConfig = field(default_factory=default_pretrain)
    """Training of the warm start / full-size reference (its validation eval is Eq. 7's
    denominator)."""
    retrain: TrainerConfig = field(default_factory=default_retrain)
    """Selective retraining of each kept mask to convergence, early-stopped on validation."""
    retrain_from_warm_start: bool = True
    """Retrain kept masks from the warm start's truncated weights (False: from scratch)."""
    target_sparsities: tuple[float, ...] = (0.8, 0.9, 0.95)
    """``c`` values served by one search (Eq. 15)."""
    budget_projection: Literal["joint", "per_role", "both"] = "joint"
    """How a selected mask is projected onto the budget ``c`` before retraining
    (:func:`~leanrec.search.embedding_size.retrain.fit_candidate`): ``joint`` (one scale for
    users and items), ``per_role`` (users and items each at ``c``), or ``both`` (retrain both,
    keep the better on validation)."""
    top_masks: int = 2
    """``l``: masks kept per target sparsity and retrained (Eq. 15-16)."""
    screen_masks: int = 0
    """Validation screen before retraining (not in the paper; 0: off, Eq. 16's ``q̄`` alone
    picks the ``l`` masks). With ``S > 0``, the ``S`` best candidates by ``q̄`` for each ``c``
    are projected onto ``c`` (by every projection of :attr:`budget_projection`), each is scored
    on validation as the warm start under those sizes, with no training (about 0.5 s on
    ML-1M), and the ``l`` best (candidate, projection) pairs are retrained. ``q̄`` averages the
    search's own quality signal over users and items; the screen ranks by the metric the
    retrained model is chosen on. Needs the warm start (:attr:`warm_start`)."""
    seed: int = 2024
    """Seeds every generator of the search."""
    num_threads: int = 1
    """torch threads (0: torch's default)."""
    progress: bool | None = None
    """Progress bars (None: only on a terminal)."""

    def __post_init__(self) -> None:
        check_literals(self)
