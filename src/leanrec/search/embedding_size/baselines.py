"""Baselines of the size search, all at the same budget as CIESS.

- SU (single, uniform): every user and item gets the same size.
- SR (single, random): sizes drawn uniformly in ``[1, d_max]``, then fitted to the budget.
- Popularity: sizes proportional to training interaction counts.
- MagPrune: the trained full table with its smallest-magnitude values zeroed, no retraining.
- PEP: learnable soft thresholds prune values during training; the mask captured when the
  target sparsity is reached is retrained (element-level, so stored as a dense masked table).
- ESAPN-style: a discrete REINFORCE policy over sizes {2, 4, 8, 16, 64, 128}, run through the
  same search loop and environment as CIESS.

Sized baselines return ``(user_sizes, item_sizes)`` fitted with
:func:`~leanrec.search.embedding_size.budget.fit_to_budget`, then go through the same
retraining as CIESS.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch

from leanrec.data.interactions import Interactions
from leanrec.embeddings import ElementMaskedEmbedding, MaskedEmbedding, SoftThresholdEmbedding
from leanrec.models.base import Recommender
from leanrec.options import check_literals
from leanrec.search.embedding_size.budget import budget_values, fit_to_budget
from leanrec.seeding import torch_seeded
from leanrec.train.bpr import TrainingError, bpr_loss
from leanrec.train.sampling import NegativeSampler

SizePair = tuple[np.ndarray, np.ndarray]


def _split(sizes: np.ndarray, n_users: int) -> SizePair:
    return sizes[:n_users], sizes[n_users:]


def uniform_sizes(n_users: int, n_items: int, max_dim: int, target_sparsity: float) -> SizePair:
    """SU: the largest common size meeting ``c`` (``floor((1 - c) d_max)``)."""
    sizes = fit_to_budget(np.ones(n_users + n_items), max_dim, target_sparsity)
    return _split(sizes, n_users)


def random_sizes(
    n_users: int, n_items: int, max_dim: int, target_sparsity: float, rng: np.random.Generator
) -> SizePair:
    """SR: uniform random sizes, rescaled to the budget."""
    weights = rng.integers(1, max_dim + 1, n_users + n_items).astype(np.float64)
    return _split(fit_to_budget(weights, max_dim, target_sparsity), n_users)


def popularity_sizes(
    user_popularity: np.ndarray, item_popularity: np.ndarray, max_dim: int, target_sparsity: float
) -> SizePair:
    """Sizes proportional to training interaction counts (at least 1, at most ``d_max``)."""
    weights = np.concatenate([user_popularity, item_popularity]).astype(np.float64)
    return _split(fit_to_budget(weights, max_dim, target_sparsity), len(user_popularity))


@torch.no_grad()
def magnitude_prune(model: Recommender, target_sparsity: float) -> Recommender:
    """MagPrune: a copy of ``model`` keeping only the globally largest ``|w|`` of its tables.

    The kept count is the same budget as every other method, ``floor((1 - c) sum N_t d_t)``.
    No retraining; the pruned values are zeroed (an unstructured mask, so no packed export).
    """
    pruned = copy.deepcopy(model)
    tables = pruned.embedding_tables()
    weights = [t.all().detach().reshape(-1) for t in tables.values()]
    flat = torch.cat(weights).abs()
    full = sum(t.num_embeddings * t.embedding_dim for t in tables.values())
    n_entities = sum(t.num_embeddings for t in tables.values())
    max_dim = next(iter(tables.values())).embedding_dim
    keep = budget_values(n_entities, max_dim, target_sparsity)
    assert full == n_entities * max_dim, "MagPrune needs tables of one width"
    threshold = torch.topk(flat, keep).values.min() if keep < flat.numel() else flat.min()
    kept_total = 0
    for table in tables.values():
        if not isinstance(table, MaskedEmbedding):
            raise TypeError("magnitude_prune expects masked tables")
        dense = table.all().detach()
        mask = dense.abs() >= threshold
        # ties at the threshold could exceed the budget: drop the surplus
        surplus = kept_total + int(mask.sum()) - keep
        if surplus > 0:
            tie_rows, tie_cols = torch.nonzero(mask & (dense.abs() == threshold), as_tuple=True)
            mask[tie_rows[:surplus], tie_cols[:surplus]] = False
        kept_total += int(mask.sum())
        table.weight.copy_(dense * mask)
    pruned.invalidate_cache()
    pruned.eval()
    return pruned


def nonzero_sparsity(model: Recommender) -> float:
    """``1 - nonzero values / all values`` over the model's tables (MagPrune's sparsity)."""
    tables = model.embedding_tables().values()
    nonzero = sum(int((t.all() != 0).sum()) for t in tables)
    full = sum(t.num_embeddings * t.embedding_dim for t in tables)
    return 1.0 - nonzero / full


ESAPN_SIZES = (2, 4, 8, 16, 64, 128)
"""The discrete size ladder of ESAPN (Liu et al., SIGIR 2020)."""


class ESAPNPolicy:
    """ESAPN-style discrete policy: per role, a REINFORCE policy decides for every entity whether
    to *keep* its size or *enlarge* it to the next rung of :data:`ESAPN_SIZES` (sizes only grow
    within an episode, every entity starting at the smallest rung).

    It runs through the same search loop, environment and reward as CIESS
    (:class:`~leanrec.search.embedding_size.policy.CIESSSearch` with ``policy=``), so the only
    difference measured is the action space and the learner.

    Args:
        max_dim: ``d_max``; rungs above it are dropped.
        learning_rate, gamma: REINFORCE settings.
        seed: seeds the networks' initial weights.
    """

    def __init__(
        self,
        max_dim: int,
        learning_rate: float = 1e-3,
        gamma: float = 0.9,
        hidden: int = 64,
        seed: int = 0,
    ) -> None:
        from leanrec.rl.reinforce import ReinforceAgent

        ladder = [d for d in ESAPN_SIZES if d <= max_dim] or [max_dim]
        self.ladder = np.asarray(ladder, dtype=np.int64)
        with torch_seeded(seed):
            self.agents = {
                role: ReinforceAgent(3, 2, learning_rate, gamma, hidden)
                for role in ("user", "item")
            }
        self.levels: dict[str, np.ndarray] = {}
        self.pending: dict[str, np.ndarray] = {}
        self.episode_done = False

    def reset_episode(self) -> None:
        self.levels = {}

    def choose(
        self, role: str, states: np.ndarray, rng: np.random.Generator, explore: bool = True
    ) -> np.ndarray:
        levels = self.levels.get(role)
        if levels is None or len(levels) != len(states):
            levels = np.zeros(len(states), dtype=np.int64)
        actions = self.agents[role].act(states, rng, explore)  # 1: enlarge, 0: keep
        levels = np.minimum(levels + actions, len(self.ladder) - 1)
        self.levels[role] = levels
        self.pending[role] = actions
        return self.ladder[levels]

    def remember(
        self,
        role: str,
        states: np.ndarray,
        sizes: np.ndarray,
        rewards: np.ndarray,
        next_states: np.ndarray,
        done: bool,
    ) -> None:
        self.agents[role].record(states, self.pending[role], rewards)
        self.episode_done = done

    def learn(self, rng: np.random.Generator) -> dict[str, float]:
        if not self.episode_done:
            return {}
        out = {}
        for role, agent in self.agents.items():
            out.update({f"{role}_{k}": v for k, v in agent.finish_episode().items()})
        self.episode_done = False
        return out

    def set_reward_lambda(self, reward_lambda: float) -> None:
        """Nothing to relabel: REINFORCE learns from each episode's own rewards, and a ``λ``
        changes only between episodes."""

    def state(self) -> dict[str, Any]:
        return {
            "agents": {role: a.state_dict() for role, a in self.agents.items()},
            "levels": {role: torch.from_numpy(v) for role, v in self.levels.items()},
            "pending": {role: torch.from_numpy(v) for role, v in self.pending.items()},
            "episode_done": self.episode_done,
        }

    def load_state(self, state: dict[str, Any]) -> None:
        for role, agent in self.agents.items():
            agent.load_state_dict(state["agents"][role])
        self.levels = {role: v.numpy().copy() for role, v in state["levels"].items()}
        self.pending = {role: v.numpy().copy() for role, v in state["pending"].items()}
        self.episode_done = bool(state["episode_done"])


@dataclass
class PEPConfig:
    """PEP (Liu et al., ICLR 2021) as run here: feature-wise learnable thresholds."""

    threshold_init: float = -8.0
    """Initial ``s`` (``sigmoid(-8) ≈ 3e-4``: almost nothing pruned at first)."""
    learning_rate: float = 0.005
    """Adam step size for weights and thresholds."""
    l2: float = 1e-4
    """λ of the BPR L2 penalty on the thresholded vectors (what pushes thresholds up)."""
    batch_size: int = 8192
    """Triples per step."""
    n_negatives: int = 4
    """Negatives per positive."""
    max_epochs: int = 60
    """Epochs of threshold learning; targets not reached by then are completed by magnitude."""
    retrain_from: Literal["trained", "init"] = "trained"
    """Weights each mask is retrained from: ``trained``, the pruned model's own trained values,
    or ``init``, the initial values that model was trained from (same seed): the PEP paper's
    lottery-ticket retraining."""

    def __post_init__(self) -> None:
        check_literals(self)


def pep_masks(
    model: Recommender,
    train: Interactions,
    targets: tuple[float, ...],
    config: PEPConfig,
    seed: int,
    log: Any = None,
) -> dict[float, dict[str, torch.Tensor]]:
    """Learn PEP thresholds on ``model`` and capture, for each target ``c``, the pruning mask
    of the first epoch whose sparsity reaches ``c``.

    A target not reached within ``max_epochs`` gets the final thresholded values pruned further
    by magnitude to its budget. Returns ``{c: {table name: (N, d) bool mask}}``; ``model`` is
    left unchanged (a copy is trained).
    """
    work = copy.deepcopy(model)
    for name, table in work.embedding_tables().items():
        work.replace_table(
            name, SoftThresholdEmbedding(table.all().detach(), config.threshold_init)
        )
    tables = work.embedding_tables()
    full = sum(t.num_embeddings * t.embedding_dim for t in tables.values())
    rng = np.random.default_rng(seed)
    sampler = NegativeSampler(train, rng)
    optimizer = torch.optim.Adam(work.parameters(), lr=config.learning_rate)
    captured: dict[float, dict[str, torch.Tensor]] = {}
    work.train()
    for epoch in range(1, config.max_epochs + 1):
        order = rng.permutation(len(train))
        negatives = sampler.sample(train.users[order], config.n_negatives)
        for start in range(0, len(order), config.batch_size):
            rows = order[start : start + config.batch_size]
            loss = bpr_loss(
                work,
                torch.from_numpy(train.users[rows]),
                torch.from_numpy(train.items[rows]),
                torch.from_numpy(negatives[start : start + config.batch_size]),
                config.l2,
            )
            if not torch.isfinite(loss):
                raise TrainingError(f"PEP loss became {loss.item()} at epoch {epoch}")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        kept = sum(t.num_parameters() for t in tables.values())
        reached = 1.0 - kept / full
        if log is not None:
            log(f"  PEP epoch {epoch}: sparsity {reached:.4f}")
        for target in targets:
            if target not in captured and reached >= target:
                captured[target] = {
                    name: t.kept_mask().clone()
                    for name, t in tables.items()
                    if isinstance(t, SoftThresholdEmbedding)
                }
        if len(captured) == len(targets):
            break
    work.eval()
    for target in targets:
        if target in captured:
            continue
        # not reached: keep the largest thresholded values within the budget
        values = {name: t.all().detach() for name, t in tables.items()}
        flat = torch.cat([v.abs().reshape(-1) for v in values.values()])
        n_entities = sum(t.num_embeddings for t in tables.values())
        max_dim = next(iter(tables.values())).embedding_dim
        keep = budget_values(n_entities, max_dim, target)
        order_flat = torch.argsort(flat, descending=True)[:keep]
        chosen = torch.zeros(flat.numel(), dtype=torch.bool)
        chosen[order_flat] = True
        chosen &= flat > 0
        masks, offset = {}, 0
        for name, v in values.items():
            masks[name] = chosen[offset : offset + v.numel()].reshape(v.shape)
            offset += v.numel()
        captured[target] = masks
    return captured


def apply_element_masks(model: Recommender, masks: dict[str, torch.Tensor]) -> Recommender:
    """Replace each table by an :class:`ElementMaskedEmbedding` with its mask (for retraining)."""
    for name, table in model.embedding_tables().items():
        model.replace_table(name, ElementMaskedEmbedding(table.all().detach(), masks[name]))
    return model
