"""CIESS and its baselines as method objects, all at the same budgets (CIESS Table 1).

Every method of the experiment is registered in :data:`METHODS`, in the table's order, and is
one of two kinds:

- a **size method** (:class:`SizeMethod`) proposes a size per user and item for a target
  sparsity ``c``; the shared selection, projection, validation screen and retraining
  (:meth:`SizeMethod.run`) turn its proposals into one retrained model:

  - CIESS (:class:`SearchedSizes`): the masks of its search (Algorithm 1), selected by Eq.
    15-16 and projected onto ``c``;
  - ESAPN-style: a discrete REINFORCE policy over sizes {2, 4, 8, 16, 64, 128}, run through
    the same search loop and environment as CIESS;
  - SU (single, uniform): every user and item gets the same size;
  - SR (single, random): sizes drawn uniformly in ``[1, d_max]``, then fitted to the budget;
  - popularity: sizes proportional to training interaction counts;

- a **pruner** prunes a trained full-size model (``pruning_base``) to the budget:

  - MagPrune: the trained full table with its smallest-magnitude values zeroed, no retraining;
  - PEP: learnable soft thresholds prune values during training; the mask captured when the
    target sparsity is reached is retrained (element-level, so stored as a dense masked table).

Row sizes are ``(user_sizes, item_sizes)`` fitted with
:func:`~leanrec.search.embedding_size.budget.fit_to_budget`.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from leanrec.data.interactions import Interactions, Split
from leanrec.embeddings import ElementMaskedEmbedding, MaskedEmbedding, SoftThresholdEmbedding
from leanrec.models.base import Recommender
from leanrec.models.compress import compress, entity_sparsity, save_compressed, set_entity_sizes
from leanrec.runner.executors import Executor, SerialExecutor, Shared
from leanrec.runner.registry import Registry
from leanrec.runner.rundir import RunDirectory, atomic_write_text
from leanrec.search.embedding_size.budget import budget_values, fit_to_budget
from leanrec.search.embedding_size.config import (
    CIESSConfig,
    EmbeddingSizeExperiment,
    PEPConfig,
)
from leanrec.search.embedding_size.deadline import check_time_limit
from leanrec.search.embedding_size.environment import SizeSearchEnvironment
from leanrec.search.embedding_size.memory import dense_memory, packed_memory
from leanrec.search.embedding_size.policy import (
    CIESSPolicy,
    CIESSSearch,
    SearchResult,
    SizePolicy,
    SizeTransitions,
)
from leanrec.search.embedding_size.retrain import (
    RetrainedModel,
    Retrainer,
    RetrainInputs,
    RetrainJob,
    ScreenInputs,
    SizePair,
    build_masked_model,
    fit_candidate,
    retrain_model,
    role_sizes,
    save_model_with_ids,
    screen_with_cache,
    select_candidates,
    shared_inputs,
)
from leanrec.seeding import torch_seeded
from leanrec.train.bpr import EpochHook, TrainerConfig, bpr_loss
from leanrec.train.checkpoint import load_checkpoint, save_atomic
from leanrec.train.sampling import NegativeSampler
from leanrec.train.step import gradient_step


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

    def remember(self, role: str, transitions: SizeTransitions) -> None:
        self.agents[role].record(transitions.states, self.pending[role], transitions.rewards)
        self.episode_done = transitions.done

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
            gradient_step(loss, optimizer, f"PEP loss became {{loss}} at epoch {epoch}")
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
        if target not in captured:
            captured[target] = _largest_values_mask(work, target)
    return captured


def _largest_values_mask(model: Recommender, target: float) -> dict[str, torch.Tensor]:
    """A target PEP did not reach: the largest non-zero (thresholded) values of ``model``'s
    tables within the budget of ``c``, as ``{table name: (N, d) bool mask}``."""
    tables = model.embedding_tables()
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
    return masks


def apply_element_masks(model: Recommender, masks: dict[str, torch.Tensor]) -> Recommender:
    """Replace each table by an :class:`ElementMaskedEmbedding` with its mask (for retraining)."""
    for name, table in model.embedding_tables().items():
        model.replace_table(name, ElementMaskedEmbedding(table.all().detach(), masks[name]))
    return model


# ------------------------------------------------------------------------ method objects
@dataclass
class MethodContext:
    """What the methods of one experiment run share: its data, run directory and full-size
    models, and the caches of the work several budgets reuse (searches, PEP's masks).

    The experiment fills in the full-size models before the first method runs; a method reads
    only what it needs (``warm_model`` is None when no method needs the warm start).
    """

    experiment: EmbeddingSizeExperiment
    split: Split
    run: RunDirectory
    on_epoch: EpochHook
    """The trainer's per-epoch hook of every (pre)training: one log line per validation."""
    timings: dict[str, float]
    """``timings.json``: wall-clock seconds of the stages, kept across resumed runs."""
    warm_model: Recommender | None = None
    """The prefix-dropout warm start (masked tables at full size), or None."""
    warm_state: dict[str, torch.Tensor] = field(default_factory=dict)
    """A copy of the warm start's weights (the search's working copy is reset to it)."""
    prune_model: Recommender | None = None
    """The full-size model the pruners start from (``pruning_base``), or None."""
    prune_state: dict[str, torch.Tensor] = field(default_factory=dict)
    """A copy of its weights (PEP's ``retrain_from="trained"`` starts from them)."""
    ordinary_state: dict[str, torch.Tensor] = field(default_factory=dict)
    """The ordinary full-size model's weights, when a method needs them (empty otherwise):
    Eq. 7's reference of a search without the warm start."""
    searches: dict[str, SearchResult] = field(default_factory=dict)
    """Finished searches of this run, by method name."""
    executor: Executor = field(default_factory=lambda: SerialExecutor(show_progress=False))
    """Where the masks of the retraining and of the screen run (``search.executor``)."""
    shared: dict[str, Shared[Any]] = field(default_factory=dict)
    """What the jobs of the retraining and the screen read, shared once per experiment."""

    def retrain_inputs(self) -> Shared[RetrainInputs]:
        """The split and the weights every retraining starts from (the warm start's when
        ``retrain_from_warm_start``, else None: from scratch), shared at the first call."""
        if "retrain" not in self.shared:
            warm = self.warm_state if self.config.retrain_from_warm_start else None
            inputs = RetrainInputs(self.split, warm)
            self.shared["retrain"] = shared_inputs(self.executor, inputs)
        return self.shared["retrain"]

    def screen_inputs(self) -> Shared[ScreenInputs]:
        """The warm start (full size, its own weights) and the split, shared at the first call."""
        if "screen" not in self.shared:
            assert self.warm_model is not None, "the screen needs the warm start"
            inputs = ScreenInputs(self.warm_model, self.split)
            self.shared["screen"] = shared_inputs(self.executor, inputs)
        return self.shared["screen"]

    @property
    def config(self) -> CIESSConfig:
        return self.experiment.search

    @property
    def retrain_config(self) -> TrainerConfig:
        """The retraining of every method, with the search's progress setting."""
        return dataclasses.replace(self.config.retrain, progress=self.config.progress)

    def log(self, message: str) -> None:
        self.run.log(message)

    def record_timings(self, **seconds: float) -> None:
        """Add to ``timings.json`` (rewritten at once, so a kill keeps what was measured)."""
        self.timings.update(seconds)
        self.run.write_json("timings.json", self.timings)


@dataclass
class MethodOutcome:
    """A method's model for one budget, chosen on validation and not yet tested."""

    model: Recommender | None
    """The model the experiment evaluates on test (inside its final evaluation); None when
    the method has no model for the budget (a search whose masks never met ``c`` under Eq.
    15's admission alone: the row says ``reached: false``)."""
    sparsity: float
    """Its sparsity as the method counts it (row sizes, or non-zero values for MagPrune)."""
    fields: dict[str, Any]
    """The row's other fields (validation metrics, seconds, method settings, ...)."""


class EmbeddingSizeMethod(Protocol):
    """What the experiment asks of every method (size methods and pruners alike)."""

    @property
    def name(self) -> str: ...

    @property
    def prunes_full_model(self) -> bool:
        """True for pruners of a trained full-size model (``pruning_base``)."""
        ...

    def needs_warm_start(self, experiment: EmbeddingSizeExperiment) -> bool:
        """Whether this method needs the prefix-dropout warm start."""
        ...

    def needs_ordinary_model(self, experiment: EmbeddingSizeExperiment) -> bool:
        """Whether this method needs the ordinary full-size model (``ordinary.pt``)."""
        ...

    def run(self, context: MethodContext, target: float) -> MethodOutcome:
        """The method's model for target sparsity ``target`` (``c``), chosen on validation."""
        ...


def _tag(target: float) -> str:
    """``c80`` for ``c = 0.8``: the budget's part of file names."""
    return f"c{round(target * 100)}"


class SizeMethod:
    """A method that proposes sizes for a budget: CIESS, ESAPN, SU, SR, popularity.

    Subclasses implement :meth:`propose`; :meth:`run` is shared: every proposal is retrained
    (from the warm start's truncated weights or from scratch, ``retrain_from_warm_start``) and
    the best on validation is kept (Eq. 16's final choice).
    """

    name: str = ""
    prunes_full_model = False
    exports_model = False
    """Save the kept model (``<name>_c<c>.pt``, packed ``.safetensors``, ``_sizes.npz``)."""

    def needs_warm_start(self, experiment: EmbeddingSizeExperiment) -> bool:
        return experiment.search.retrain_from_warm_start

    def needs_ordinary_model(self, experiment: EmbeddingSizeExperiment) -> bool:
        return False

    def propose(
        self, context: MethodContext, target: float
    ) -> tuple[list[SizePair], dict[str, Any]]:
        """Size candidates meeting ``c``, and the row's record of how they were chosen."""
        raise NotImplementedError

    def run(self, context: MethodContext, target: float) -> MethodOutcome:
        began = time.perf_counter()
        sized, record = self.propose(context, target)
        if not sized:  # Eq. 15 admitted no mask: the budget is not reached, nothing is filled in
            context.log(f"{self.name} at c = {target:.0%}: no searched mask meets c (not reached)")
            missed = {**record, "reached": False, "seconds": time.perf_counter() - began}
            return MethodOutcome(None, float(record.get("searched_max_sparsity", 0.0)), missed)
        retrained, tried = retrain_best(context, self.name, target, sized)
        fields: dict[str, Any] = {
            "valid": retrained.valid,
            "candidates_retrained": tried,
            **record,
            "seconds": time.perf_counter() - began,
            "epochs": retrained.train_result.epochs_run,
            "embedding_parameters": retrained.model.embedding_parameters(),
            "dense_bytes": retrained.model.embedding_bytes(),
        }
        if self.exports_model:
            stem = f"{self.name}_{_tag(target)}"
            fields.update(export_sized_model(context, retrained.model, stem))
            context.record_timings(
                **{f"{self.name}_retrain_{_tag(target)}_seconds": fields["seconds"]}
            )
            packed_path: Path | None = context.run.file(f"{stem}.safetensors")
        else:
            packed_path = None
        vocab = context.split.train
        fields["memory"] = packed_memory(
            retrained.model, vocab.user_vocab.raw_ids, vocab.item_vocab.raw_ids, packed_path
        )
        return MethodOutcome(retrained.model, entity_sparsity(retrained.model), fields)


def retrain_best(
    context: MethodContext, method: str, target: float, sized: list[SizePair]
) -> tuple[RetrainedModel, list[dict[str, Any]]]:
    """Retrain every size assignment of ``sized`` and keep the best on validation (the first
    of equals); also returns each one's validation metrics and sparsity, in order.

    The assignments are independent :class:`~leanrec.search.embedding_size.retrain.Retrainer`
    jobs of ``context.executor`` (serial, or one Ray task each); each checkpoints to
    ``retrain/<method>_c<c>_<index>.pt`` (removed when every job is done), so a killed run
    resumes it."""
    cfg, retrain_cfg, executor = context.config, context.retrain_config, context.executor
    metric = retrain_cfg.valid_metric or "recall@20"
    what = f"{method} at c = {target:.0%}"
    jobs = [
        RetrainJob(
            user_sizes,
            item_sizes,
            context.run.file(f"retrain/{method}_{_tag(target)}_{index}.pt"),
            f"{what}: mask {index + 1}/{len(sized)}",
        )
        for index, (user_sizes, item_sizes) in enumerate(sized)
    ]
    here = executor.in_process
    retrainer = Retrainer(
        context.retrain_inputs(),
        context.experiment.model,
        context.experiment.model_options,
        cfg.max_dim,
        retrain_cfg,
        cfg.seed,
        num_threads=None if here else torch.get_num_threads(),
        log=context.log if here else None,
        on_epoch=context.on_epoch if here else None,
    )
    if not here:
        context.log(f"{what}: retraining {len(jobs)} masks on {executor!r}")

    def finished(index: int, retrained: RetrainedModel) -> None:
        if not here:
            result = retrained.train_result
            context.log(
                f"{jobs[index].label}: valid {metric} {retrained.valid.get(metric, -1.0):.4f} "
                f"after {result.epochs_run} epochs"
            )

    best: tuple[float, RetrainedModel] | None = None
    tried = []
    for retrained in executor.map(retrainer, jobs, on_result=finished):
        score = retrained.valid.get(metric, -1.0)
        tried.append({"valid": retrained.valid, "sparsity": retrained.sparsity})
        if best is None or score > best[0]:
            best = (score, retrained)
    # a finished job's checkpoint resumes as finished: kept until every job of the budget is
    # done, a run stopped (or killed) in a later job does not retrain the earlier ones again
    for job in jobs:
        if job.checkpoint_path is not None:
            job.checkpoint_path.unlink(missing_ok=True)
    assert best is not None, "a size method proposed no sizes"
    return best[1], tried


def export_sized_model(context: MethodContext, model: Recommender, stem: str) -> dict[str, int]:
    """Save a retrained sized model as ``<stem>.pt`` (masked checkpoint), ``<stem>.safetensors``
    (packed rows: the bytes it really takes) and ``<stem>_sizes.npz`` (``users``, ``items``);
    returns the packed sizes for its row."""
    split = context.split
    save_model_with_ids(model, split, context.run.file(f"{stem}.pt"))
    packed_path = save_compressed(
        model,
        context.run.file(f"{stem}.safetensors"),
        split.train.user_vocab.raw_ids,
        split.train.item_vocab.raw_ids,
    )
    np.savez(
        context.run.file(f"{stem}_sizes.npz"),
        users=role_sizes(model, "user"),
        items=role_sizes(model, "item"),
    )
    return {
        "packed_bytes": compress(model).embedding_bytes(),
        "packed_file_bytes": packed_path.stat().st_size,
    }


@dataclass(frozen=True)
class UniformSizes(SizeMethod):
    """SU: the largest common size meeting ``c``."""

    name: str = "su"

    def propose(
        self, context: MethodContext, target: float
    ) -> tuple[list[SizePair], dict[str, Any]]:
        train = context.split.train
        return [uniform_sizes(train.n_users, train.n_items, context.config.max_dim, target)], {}


@dataclass(frozen=True)
class RandomSizes(SizeMethod):
    """SR: uniform random sizes fitted to ``c`` (drawn from ``seed + 1`` for every ``c``)."""

    name: str = "sr"

    def propose(
        self, context: MethodContext, target: float
    ) -> tuple[list[SizePair], dict[str, Any]]:
        train, cfg = context.split.train, context.config
        rng = np.random.default_rng(cfg.seed + 1)
        return [random_sizes(train.n_users, train.n_items, cfg.max_dim, target, rng)], {}


@dataclass(frozen=True)
class PopularitySizes(SizeMethod):
    """Sizes proportional to training interaction counts, fitted to ``c``."""

    name: str = "popularity"

    def propose(
        self, context: MethodContext, target: float
    ) -> tuple[list[SizePair], dict[str, Any]]:
        train = context.split.train
        user_pop, item_pop = train.user_popularity(), train.item_popularity()
        return [popularity_sizes(user_pop, item_pop, context.config.max_dim, target)], {}


PROJECTIONS = {"joint": (False,), "per_role": (True,), "both": (False, True)}
"""``budget_projection`` -> the ``per_role`` values of :func:`fit_candidate` it retrains."""


@dataclass(frozen=True)
class SearchedSizes(SizeMethod):
    """A size search through Algorithm 1's loop (:class:`CIESSSearch`) with a given policy:
    CIESS's TD3 (:class:`CIESSPolicy`) or the ESAPN-style :class:`ESAPNPolicy`.

    The search runs once per experiment (checkpointed every iteration, resumed after a kill)
    and serves every budget: for each ``c`` its candidates are selected (Eq. 15-16), projected
    onto ``c`` and, with ``screen_masks``, screened on validation before retraining.
    """

    name: str = "ciess"
    make_policy: Callable[[CIESSConfig], SizePolicy] = CIESSPolicy
    """The policy of the search, made from the search configuration."""
    exports_model: bool = False

    def needs_warm_start(self, experiment: EmbeddingSizeExperiment) -> bool:
        cfg = experiment.search
        return cfg.warm_start or cfg.screen_masks > 0 or cfg.retrain_from_warm_start

    def needs_ordinary_model(self, experiment: EmbeddingSizeExperiment) -> bool:
        """Without the warm start, Eq. 7's reference is the ordinary full-size model."""
        return not experiment.search.warm_start

    @property
    def file_prefix(self) -> str:
        """Prefix of the search's files (``search_state.pt``, ``esapn_search_state.pt``)."""
        return "" if self.name == "ciess" else f"{self.name}_"

    def propose(
        self, context: MethodContext, target: float
    ) -> tuple[list[SizePair], dict[str, Any]]:
        cfg = context.config
        search = self.search(context)
        chosen = select_candidates(
            search.candidates, target, cfg.screen_masks or cfg.top_masks, cfg.rescale_to_budget
        )
        if cfg.rescale_to_budget:
            sized = [
                fit_candidate(candidate, cfg.max_dim, target, per_role=per_role)
                for per_role in PROJECTIONS[cfg.budget_projection]
                for candidate in chosen
            ]
        else:  # Eq. 15: the admitted masks as searched (each meets c already)
            sized = [(c.user_sizes.astype(np.int64), c.item_sizes.astype(np.int64)) for c in chosen]
            if not sized:
                densest = max((c.sparsity for c in search.candidates), default=0.0)
                return [], {"searched_max_sparsity": densest, "admitted": 0}
        if not cfg.screen_masks:
            return sized, {} if cfg.rescale_to_budget else {"admitted": len(sized)}
        assert context.warm_model is not None
        return screen_with_cache(
            context.warm_model,
            context.split,
            sized,
            cfg.top_masks,
            context.retrain_config.valid_metric or "recall@20",
            context.run.file(f"{self.name}_{_tag(target)}_screen.pt"),
            f"{self.name} at c = {target:.0%}",
            context.log,
            context.executor,
            context.screen_inputs(),
        )

    def search(self, context: MethodContext) -> SearchResult:
        """The finished search (run, or resumed from its checkpoint, at the first call)."""
        if self.name not in context.searches:
            context.searches[self.name] = self._run_search(context)
        return context.searches[self.name]

    def _run_search(self, context: MethodContext) -> SearchResult:
        cfg, split, prefix = context.config, context.split, self.file_prefix
        exp = context.experiment
        if cfg.warm_start:
            work_model = context.warm_model
            assert work_model is not None, "a search with warm_start needs the warm start"
            start_state, reference_state = context.warm_state, None
        else:  # the paper: one fixed fresh initialisation per step, an ordinary reference
            assert context.ordinary_state, "a search without warm_start needs the ordinary model"
            work_model = build_masked_model(
                split, exp.model, exp.model_options, cfg.max_dim, cfg.seed
            )
            start_state = {k: v.clone() for k, v in work_model.state_dict().items()}
            reference_state = context.ordinary_state
        env = SizeSearchEnvironment(
            work_model,
            split,
            cfg.eval_ks,
            cfg.inner_batches,
            cfg.fresh_batch_size if not cfg.warm_start else cfg.inner_batch_size,
            cfg.inner_learning_rate,
            cfg.inner_negatives,
            cfg.pretrain.l2,
            start_state,
            cfg.seed,
            item_quality=cfg.item_quality,
            reference_state=reference_state,
            fresh_epochs=0 if cfg.warm_start else cfg.fresh_epochs,
        )
        search = CIESSSearch(
            env,
            split.train.user_popularity(),
            split.train.item_popularity(),
            cfg,
            checkpoint_path=context.run.file(f"{prefix}search_state.pt"),
            policy=self.make_policy(cfg),
        )
        history_path = context.run.file(f"{prefix}search_history.json")
        total = cfg.episodes * cfg.iterations

        def report(record: dict[str, float]) -> None:
            step = (int(record["episode"]) - 1) * cfg.iterations + int(record["iteration"])
            if step % cfg.iterations == 0 or step == 1:
                context.log(
                    f"{self.name} search {step}/{total}: reward {record['mean_reward']:.4f} "
                    f"size {record['mean_size']:.1f} q {record['mean_quality']:.4f} "
                    f"sparsity {record['sparsity']:.3f} ({record['seconds']:.1f} s)"
                )
            _write_history(history_path, search.history)
            check_time_limit(f"{self.name} search iteration {step}/{total}")

        context.log(f"{self.name} search: {cfg.episodes} episodes x {cfg.iterations} iterations")
        result = search.run(resume=True, on_iteration=report)
        iterations = len(result.history)
        context.record_timings(
            **{
                f"{prefix}search_seconds": result.seconds,
                f"{prefix}search_iterations": iterations,
                f"{prefix}seconds_per_iteration": result.seconds / max(1, iterations),
            }
        )
        _write_history(history_path, result.history)
        if cfg.warm_start:
            # the warm model was the environment's working copy: put its weights and sizes back
            work_model.load_state_dict(context.warm_state)
            full = cfg.max_dim
            set_entity_sizes(
                work_model, np.full(split.train.n_users, full), np.full(split.train.n_items, full)
            )
        return result


def _write_history(path: Path, history: list[dict[str, float]]) -> None:
    atomic_write_text(path, json.dumps(history, indent=1))


def _esapn_policy(config: CIESSConfig) -> ESAPNPolicy:
    return ESAPNPolicy(config.max_dim, seed=config.seed)


@dataclass(frozen=True)
class MagnitudePruning:
    """MagPrune: the full-size model's globally largest values within the budget, no
    retraining (:func:`magnitude_prune`)."""

    name: str = "magprune"
    prunes_full_model: bool = True

    def needs_warm_start(self, experiment: EmbeddingSizeExperiment) -> bool:
        return experiment.pruning_base == "warm_start"

    def needs_ordinary_model(self, experiment: EmbeddingSizeExperiment) -> bool:
        return experiment.pruning_base == "ordinary"

    def run(self, context: MethodContext, target: float) -> MethodOutcome:
        assert context.prune_model is not None
        pruned = magnitude_prune(context.prune_model, target)
        fields = {"base": context.experiment.pruning_base, "memory": dense_memory(pruned)}
        return MethodOutcome(pruned, nonzero_sparsity(pruned), fields)


@dataclass(frozen=True)
class PEPPruning:
    """PEP: the element mask its learned thresholds reach at ``c`` (:func:`pep_masks`, learned
    once for every budget and cached in ``pep_masks.pt``), retrained from the pruned model's
    trained values or from their initialisation (``PEPConfig.retrain_from``)."""

    name: str = "pep"
    prunes_full_model: bool = True

    def needs_warm_start(self, experiment: EmbeddingSizeExperiment) -> bool:
        return experiment.pruning_base == "warm_start"

    def needs_ordinary_model(self, experiment: EmbeddingSizeExperiment) -> bool:
        return experiment.pruning_base == "ordinary"

    def run(self, context: MethodContext, target: float) -> MethodOutcome:
        began = time.perf_counter()
        exp, cfg = context.experiment, context.config
        masks = self.masks(context)[target]
        # built with the seed the pruned model was pretrained from: its initial values
        model = build_masked_model(
            context.split, exp.model, exp.model_options, cfg.max_dim, cfg.seed
        )
        if exp.pep.retrain_from == "trained":  # else "init": keep the initial values
            model.load_state_dict(context.prune_state)
        apply_element_masks(model, masks)
        context.log(f"pep at c = {target:.0%}: retraining its mask")
        checkpoint = context.run.file(f"retrain/pep_{_tag(target)}.pt")
        retrained = retrain_model(
            model,
            context.split,
            context.retrain_config,
            checkpoint,
            context.on_epoch,
            evaluate_test=False,
        )
        checkpoint.unlink(missing_ok=True)
        fields = {
            "valid": retrained.valid,
            "seconds": time.perf_counter() - began,
            "epochs": retrained.train_result.epochs_run,
            "base": exp.pruning_base,
            "retrain_from": exp.pep.retrain_from,
            "memory": dense_memory(retrained.model),
        }
        return MethodOutcome(retrained.model, entity_sparsity(retrained.model), fields)

    def masks(self, context: MethodContext) -> dict[float, dict[str, torch.Tensor]]:
        """PEP's masks for every target, learned once and cached in ``pep_masks.pt``."""
        path = context.run.file("pep_masks.pt")
        if path.exists():
            return {float(k): v for k, v in load_checkpoint(path).items()}
        context.log("PEP: learning soft thresholds")
        began = time.perf_counter()
        assert context.prune_model is not None
        masks = pep_masks(
            context.prune_model,
            context.split.train,
            tuple(context.config.target_sparsities),
            context.experiment.pep,
            context.config.seed,
            log=context.log,
        )
        context.record_timings(pep_threshold_seconds=time.perf_counter() - began)
        save_atomic({str(k): v for k, v in masks.items()}, path)
        return masks


METHODS: Registry[EmbeddingSizeMethod] = Registry("embedding-size method")
"""Every method of the experiment, in the default table order."""
METHODS.add(SearchedSizes("ciess", CIESSPolicy, exports_model=True))
METHODS.add(UniformSizes())
METHODS.add(RandomSizes())
METHODS.add(PopularitySizes())
METHODS.add(MagnitudePruning())
METHODS.add(PEPPruning())
METHODS.add(SearchedSizes("esapn", _esapn_policy))

ELEMENT_PRUNERS = tuple(method.name for method in METHODS if method.prunes_full_model)
"""Methods that prune single weights of a trained full-size model (``pruning_base``)."""

__all__ = [
    "ELEMENT_PRUNERS",
    "METHODS",
    "ESAPNPolicy",
    "EmbeddingSizeMethod",
    "MagnitudePruning",
    "MethodContext",
    "MethodOutcome",
    "PEPConfig",
    "PEPPruning",
    "PopularitySizes",
    "RandomSizes",
    "SearchedSizes",
    "SizeMethod",
    "UniformSizes",
    "apply_element_masks",
    "magnitude_prune",
    "nonzero_sparsity",
    "pep_masks",
    "popularity_sizes",
    "random_sizes",
    "uniform_sizes",
]
