"""AutoAssign+ and its baselines as method objects on one stream harness.

A method says how each ID table of the base model is stored (``tables``: a stream-table
factory for :class:`~leanrec.models.stream.StreamModel`) and, for the hierarchies, who moves
IDs between levels once per chunk (``assigner``). Every method has one knob, tried over a grid
and chosen on the warm-up only (:mod:`leanrec.search.shared_embedding.experiment`):

=====================  =========================================  ===========================
name                   tables                                     knob
=====================  =========================================  ===========================
all_unique             own row on first sight (unbounded)         none
threshold              own row after ``n`` events, shared before  ``n``
hashing                hashing trick into ``B`` buckets           ``B`` / warm-up IDs
qr                     quotient-remainder, ``S`` distinct slots   ``S`` / warm-up IDs
lfu / lru              ``C`` rows, evict least frequently /       ``C`` / warm-up IDs
                       recently used, shared fallback
threshold_hierarchy    ``k`` shared levels, fixed frequency       ``t_k`` (events to a row)
                       thresholds, no agent (the ablation)
autoassign             ``k`` shared levels, the Identity Agent    ``k``
autoassign_leanrec     the same, agent preset ``leanrec``         ``k``
                       (advantage reward, no-descent prior)
=====================  =========================================  ===========================

Sizes given as shares of the warm-up IDs use the distinct IDs of each field in the warm-up,
so nothing after the warm-up sizes a table.

In a hierarchy every table of a field follows the same positions: the field's first ``d``-wide
table (``main``) is moved, the other tables of the field (the CTR models' first-order weights,
NeuMF's second tower) copy its positions (:class:`FieldHierarchy`).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import numpy as np
import torch

from leanrec.embeddings import (
    EvictingEmbedding,
    GrowingEmbedding,
    HashedEmbedding,
    HierarchicalSharedEmbedding,
    QREmbedding,
    ThresholdEmbedding,
    threshold_positions,
)
from leanrec.embeddings.base import EmbeddingTable
from leanrec.evaluate.prequential import StreamChunk
from leanrec.models.stream import StreamModel, StreamTableFactory
from leanrec.runner.registry import Registry
from leanrec.search.shared_embedding.config import AutoAssignConfig, agent_preset
from leanrec.search.shared_embedding.policy import IdentityAgent
from leanrec.search.shared_embedding.side import COLUMN

Knob = float
"""A method's knob value as stored in rows (0 for a method without one)."""


@dataclass(frozen=True)
class BuildContext:
    """What a method may use to build its tables: chosen or fixed before the evaluated stream.

    Attributes:
        fields: the stream ID fields the model reads.
        warmup_ids: distinct IDs of each field in the warm-up.
        init_std: std of new rows and shared vectors.
        seed: the run's seed (hash seeds, agent).
        generator: the tables' initialisation generator (owned by the stream model).
        agent: the AutoAssign+ configuration.
        groups: side-feature groups per field (:mod:`.side`; a field without: none), the
            level-1 groups of a hierarchy whose agent has ``side_groups``.
    """

    fields: tuple[str, ...]
    warmup_ids: Mapping[str, int]
    init_std: float
    seed: int
    generator: torch.Generator
    agent: AutoAssignConfig
    groups: Mapping[str, int] = field(default_factory=dict)


def field_of(table_name: str, fields: tuple[str, ...]) -> str:
    """The stream field feeding a table: ``"user.first_order" -> "user"``, NeuMF's
    ``"gmf_user" -> "user"``."""
    base = table_name.split(".")[0]
    if base in fields:
        return base
    for f in fields:
        if f in base:
            return f
    raise ValueError(f"cannot tell which field of {fields} feeds table {table_name!r}")


# ---------------------------------------------------------------------------------- assigners
class Assigner(Protocol):
    """Moves IDs once per chunk, before the base model learns it.

    An assigner may also have ``see(batch)`` (called before the chunk's IDs are read, in
    predict and learn: what the events say of their IDs, e.g. side groups) and
    ``learnt(batch)`` (called after the base model has learnt the chunk); the trainer calls
    them when they are there."""

    needs_losses: bool
    """Whether :meth:`assign` needs the per-event losses of the chunk."""

    def extend(self, sizes: Mapping[str, int]) -> None: ...

    def assign(self, batch: StreamChunk, losses: torch.Tensor | None) -> None: ...

    def nbytes(self) -> int: ...

    def agent_bytes(self) -> int: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


@dataclass
class FieldHierarchy:
    """The hierarchical tables of one field: ``main`` is moved, ``mirrors`` copy it."""

    field: str
    main: HierarchicalSharedEmbedding
    mirrors: list[HierarchicalSharedEmbedding]

    def apply(self, ids: torch.Tensor, positions: torch.Tensor) -> None:
        """Give every mirror the positions ``main`` holds for ``ids`` (and its compaction)."""
        for mirror in self.mirrors:
            mirror.set_positions(ids, positions)
            if mirror.unique.capacity > self.main.unique.capacity:
                mirror.unique.compact()  # same used rows as main: shrinks to main's storage


def field_hierarchies(model: StreamModel) -> list[FieldHierarchy]:
    """Group the model's hierarchical tables by field, widest first (the field's ``main``)."""
    grouped: dict[str, list[HierarchicalSharedEmbedding]] = {}
    for name, table in model.id_tables().items():
        if isinstance(table, HierarchicalSharedEmbedding):
            grouped.setdefault(model.fields[name], []).append(table)
    out = []
    for f, tables in grouped.items():
        tables.sort(key=lambda t: -t.embedding_dim)
        out.append(FieldHierarchy(f, tables[0], tables[1:]))
    return out


def chunk_ids(batch: StreamChunk, field: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The chunk's distinct IDs of ``field`` ``(m,)``, each event's index into them ``(n,)``,
    and each ID's events so far with this chunk's ``(m,)`` (from the evaluator's counters)."""
    index = torch.from_numpy(batch.observed.index[field])
    ids, inverse = torch.unique(index, return_inverse=True)
    seen = torch.from_numpy(batch.observed.count_before[field]).to(torch.int64) + 1
    counts = torch.zeros(len(ids), dtype=torch.int64).scatter_reduce_(0, inverse, seen, "amax")
    return ids, inverse, counts


class ThresholdHierarchyAssigner:
    """The ablation: positions from fixed frequency thresholds ``t_1 <= ... <= t_k``
    (:func:`~leanrec.embeddings.threshold_positions`), no agent."""

    needs_losses = False

    def __init__(self, model: StreamModel, thresholds: tuple[int, ...]) -> None:
        self.hierarchies = field_hierarchies(model)
        self.thresholds = thresholds

    def extend(self, sizes: Mapping[str, int]) -> None:
        pass

    def assign(self, batch: StreamChunk, losses: torch.Tensor | None) -> None:
        for h in self.hierarchies:
            ids, _, counts = chunk_ids(batch, h.field)
            positions = h.main.set_positions(ids, threshold_positions(counts, self.thresholds))
            h.apply(ids, positions)

    def nbytes(self) -> int:
        return 0

    def agent_bytes(self) -> int:
        return 0

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


class AgentAssigner:
    """AutoAssign+: the Identity Agent moves each chunk's IDs (see :mod:`.policy`); under
    ``max_bytes`` the lowest-value unique IDs are demoted until the embedding bytes (tables
    plus the agent's per-ID state) fit, halving the largest unique storage at a time."""

    needs_losses = True

    def __init__(self, model: StreamModel, config: AutoAssignConfig) -> None:
        self.model = model
        self.hierarchies = field_hierarchies(model)
        self.agent = IdentityAgent(tuple(h.field for h in self.hierarchies), config)
        self.group_update = config.group_update
        self.group_rate = config.group_rate
        self.group_min_count = config.group_min_count
        self.group_members = {
            h.field: torch.zeros(h.main.groups, dtype=torch.float64)
            for h in self.hierarchies
            if h.main.groups
        }
        """Members counted so far per group of each grouped field (``M`` of ``group_rate``)."""
        self.max_bytes = config.max_bytes
        self.random_rows = (
            torch.Generator().manual_seed(config.seed) if config.promoted_init == "random" else None
        )
        """Draws promoted rows (``promoted_init="random"``); its state is checkpointed."""
        self.shared_optimizer = (
            torch.optim.Adam(self.shared_parameters(), lr=config.shared_learning_rate)
            if config.shared_learning_rate > 0
            else None
        )
        """Own optimiser of the shared vectors (``shared_learning_rate > 0``), stepped by
        :class:`~leanrec.search.shared_embedding.trainer.AssigningTrainer` on the events that
        read them, before the moves."""

    def see(self, batch: StreamChunk) -> None:
        """Each grouped field's IDs of the chunk take the group their events carry (the
        stream's :data:`~leanrec.search.shared_embedding.side.COLUMN` values), before the
        chunk is read."""
        for h in self.hierarchies:
            column = batch.events.values.get(COLUMN.format(field=h.field))
            if not h.main.groups or column is None:
                continue
            index = torch.from_numpy(batch.observed.index[h.field]).to(torch.int64)
            groups = torch.from_numpy(column).to(torch.int64)
            for table in (h.main, *h.mirrors):
                if table.groups:
                    table.set_groups(index, groups.clamp(max=table.groups - 1))

    def learnt(self, batch: StreamChunk) -> None:
        """``group_update="mean"``: each group's vector moves towards the mean row of the
        chunk's IDs of that group that hold a row (float or parked) and have at least
        ``group_min_count`` events, by ``max(ρ, m / M)`` (:attr:`group_members` is ``M``)."""
        if self.group_update != "mean":
            return
        for h in self.hierarchies:
            column = batch.events.values.get(COLUMN.format(field=h.field))
            if not h.main.groups or column is None:
                continue
            ids, inverse, _ = chunk_ids(batch, h.field)
            group = torch.zeros(len(ids), dtype=torch.int64)  # an ID's events carry one group
            group[inverse] = torch.from_numpy(column).to(torch.int64)
            grown = (h.main.unique.rows(ids) != -1) & (h.main.counts(ids) >= self.group_min_count)
            grown &= group >= 0
            ids, group = ids[grown], group[grown].clamp(max=h.main.groups - 1)
            members = torch.bincount(group, minlength=h.main.groups)
            seen = self.group_members[h.field]
            seen += members
            share = members.to(torch.float64) / seen.clamp(min=1.0)
            rate = share.clamp(min=self.group_rate).to(torch.float32)
            for table in (h.main, *h.mirrors):
                if table.groups:
                    table.blend_groups(ids, group.clamp(max=table.groups - 1), rate)

    def extend(self, sizes: Mapping[str, int]) -> None:
        self.agent.extend({f: int(sizes[f]) for f in self.agent.fields})
        self.enforce_cap()

    def assign(self, batch: StreamChunk, losses: torch.Tensor | None) -> None:
        assert losses is not None
        now = batch.chunk.index
        seen = []
        for h in self.hierarchies:
            ids, inverse, counts = chunk_ids(batch, h.field)
            per_id = torch.zeros(len(ids)).index_add_(0, inverse, losses.float())
            per_id /= torch.bincount(inverse, minlength=len(ids)).float()
            seen.append(
                self.agent.observe(h.field, ids, per_id, counts, h.main.positions(ids), now)
            )
        idle = [
            self.agent.idle_round(
                h.field, now, h.main.num_embeddings, h.main.counts, h.main.positions
            )
            for h in self.hierarchies
        ]
        self.agent.update()  # critic, then actor; the base model learns after the moves
        for h, snapshot, idle_ids in zip(self.hierarchies, seen, idle, strict=True):
            for decided in (snapshot, idle_ids):
                if decided is None:
                    continue
                actions = self.agent.decide(decided)
                before = h.main.positions(decided.ids)
                parked = h.main.is_parked(decided.ids) if h.main.park else None
                positions = h.main.move(decided.ids, actions)
                h.apply(decided.ids, positions)
                top = h.main.levels + 1
                if self.random_rows is not None:
                    promoted = (before < top) & (positions == top)
                    if parked is not None:
                        promoted &= ~parked  # a parked row resumes, it does not start afresh
                    self._randomise(h, decided.ids[promoted])
                if decided.idle:
                    self.agent.requeue(h.field, decided.ids[positions == top], now)
        self.enforce_cap()

    def _randomise(self, h: FieldHierarchy, promoted: torch.Tensor) -> None:
        """``promoted_init="random"``: the new rows of ``promoted`` start at ``N(0, init_std)``."""
        assert self.random_rows is not None
        if len(promoted) == 0:
            return
        with torch.no_grad():
            for table in (h.main, *h.mirrors):
                rows = table.unique.rows(promoted)
                weight = table.unique.weight
                noise = torch.randn(len(rows), weight.shape[1], generator=self.random_rows)
                weight[rows] = noise * table.init_std

    def shared_parameters(self) -> list[torch.nn.Parameter]:
        """The shared level vectors of every hierarchical table (main and mirrors), and their
        level-1 group vectors with ``group_update="fitted"``."""
        tables = [t for h in self.hierarchies for t in (h.main, *h.mirrors)]
        shared = [t.shared for t in tables]
        if self.group_update == "fitted":
            shared += [t.group_vectors for t in tables if t.groups]
        return shared

    def reads_shared(self, batch: StreamChunk) -> torch.Tensor:
        """Per event of the chunk, whether it reads a shared vector now (an ID of it at
        position ``0..k``), bool ``(n,)``."""
        mask = torch.zeros(len(batch.events), dtype=torch.bool)
        for h in self.hierarchies:
            index = torch.from_numpy(batch.observed.index[h.field]).to(torch.int64)
            mask |= h.main.positions(index) <= h.main.levels
        return mask

    def total_bytes(self) -> int:
        return self.model.embedding_bytes() + self.agent.nbytes()

    def enforce_cap(self) -> None:
        """Demote the lowest-value unique IDs until :meth:`total_bytes` fits ``max_bytes``."""
        if self.max_bytes is None:
            return
        while self.total_bytes() > self.max_bytes:
            holding = [h for h in self.hierarchies if h.main.unique.capacity > 0]
            shrinkable = [h for h in holding if h.main.unique.capacity > h.main.unique.min_capacity]
            if not shrinkable:
                raise ValueError(
                    f"max_bytes={self.max_bytes} cannot hold the per-ID state and the smallest "
                    f"unique storage ({self.total_bytes()} bytes now)"
                )
            h = max(shrinkable, key=lambda g: g.main.unique.capacity)
            unique = h.main.unique
            keep = unique.capacity // 2
            holders = unique.id_of_row[unique.id_of_row >= 0]
            if len(holders) > keep:
                value = self.agent.unique_value(h.field, holders, h.main.counts(holders))
                demoted = holders[torch.argsort(value, stable=True)[: len(holders) - keep]]
                for table in (h.main, *h.mirrors):  # freed, not parked: the cap wants bytes
                    table.free_rows(demoted)
            unique.compact()
            for mirror in h.mirrors:
                mirror.unique.compact()

    def nbytes(self) -> int:
        return self.agent.nbytes()

    def agent_bytes(self) -> int:
        return self.agent.agent_bytes()

    def state_dict(self) -> dict[str, Any]:
        state = self.agent.state_dict()
        if self.shared_optimizer is not None:
            state["shared_optimizer"] = self.shared_optimizer.state_dict()
        if self.random_rows is not None:
            state["random_rows"] = self.random_rows.get_state()
        if self.group_members:
            state["group_members"] = {f: m.clone() for f, m in self.group_members.items()}
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.agent.load_state_dict(state)
        if self.shared_optimizer is not None:
            self.shared_optimizer.load_state_dict(state["shared_optimizer"])
        if self.random_rows is not None:
            self.random_rows.set_state(state["random_rows"])
        for f, members in state.get("group_members", {}).items():
            self.group_members[f].copy_(members)


# ---------------------------------------------------------------------------------- methods
class SharedEmbeddingMethod:
    """A way to hold a stream's ID vectors, with one knob (override :meth:`tables`)."""

    name = ""
    knob_name = ""
    """What the knob is (shown in tables); '' for a method without one."""

    def knobs(self, grids: Mapping[str, tuple[Any, ...]]) -> tuple[Knob, ...]:
        """The knob values to try (from the experiment's grids)."""
        return (0.0,)

    def tables(self, knob: Knob, context: BuildContext) -> StreamTableFactory:
        raise NotImplementedError

    def assigner(self, knob: Knob, context: BuildContext, model: StreamModel) -> Assigner | None:
        """Who moves IDs per chunk (None: the tables decide alone in ``observe``)."""
        return None


def _size(share: Knob, context: BuildContext, table_name: str) -> int:
    """``share`` of the warm-up IDs of the table's field, at least 1."""
    return max(1, math.ceil(share * context.warmup_ids[field_of(table_name, context.fields)]))


def _hash_seed(context: BuildContext, table_name: str) -> int:
    """One hash per field and seed: a field's tables share their buckets."""
    return zlib.crc32(field_of(table_name, context.fields).encode()) + 7919 * context.seed


class AllUnique(SharedEmbeddingMethod):
    name = "all_unique"

    def tables(self, knob: Knob, context: BuildContext) -> StreamTableFactory:
        def build(name: str, n: int, d: int) -> EmbeddingTable:
            return GrowingEmbedding(
                n, d, init_std=context.init_std, generator=context.generator,
                allocate_on_observe=True,
            )  # fmt: skip

        return build


class FrequencyThreshold(SharedEmbeddingMethod):
    name = "threshold"
    knob_name = "n"

    def knobs(self, grids: Mapping[str, tuple[Any, ...]]) -> tuple[Knob, ...]:
        return tuple(float(n) for n in grids["threshold_grid"])

    def tables(self, knob: Knob, context: BuildContext) -> StreamTableFactory:
        def build(name: str, n: int, d: int) -> EmbeddingTable:
            return ThresholdEmbedding(
                n, d, threshold=int(knob), init_std=context.init_std, generator=context.generator
            )

        return build


class Hashing(SharedEmbeddingMethod):
    name = "hashing"
    knob_name = "B/ids"

    def knobs(self, grids: Mapping[str, tuple[Any, ...]]) -> tuple[Knob, ...]:
        return tuple(float(s) for s in grids["size_grid"])

    def tables(self, knob: Knob, context: BuildContext) -> StreamTableFactory:
        def build(name: str, n: int, d: int) -> EmbeddingTable:
            return HashedEmbedding(
                n, d, num_buckets=_size(knob, context, name), seed=_hash_seed(context, name),
                init_std=context.init_std, generator=context.generator,
            )  # fmt: skip

        return build


class QuotientRemainder(SharedEmbeddingMethod):
    name = "qr"
    knob_name = "S/ids"

    def knobs(self, grids: Mapping[str, tuple[Any, ...]]) -> tuple[Knob, ...]:
        return tuple(float(s) for s in grids["size_grid"])

    def tables(self, knob: Knob, context: BuildContext) -> StreamTableFactory:
        def build(name: str, n: int, d: int) -> EmbeddingTable:
            return QREmbedding.for_slots(
                n, d, slots=_size(knob, context, name), init_std=context.init_std,
                generator=context.generator,
            )  # fmt: skip

        return build


class Evicting(SharedEmbeddingMethod):
    """A fixed table of ``C`` rows with LFU or LRU eviction and a shared fallback row."""

    knob_name = "C/ids"

    def __init__(self, policy: str) -> None:
        self.policy = policy
        self.name = policy

    def knobs(self, grids: Mapping[str, tuple[Any, ...]]) -> tuple[Knob, ...]:
        return tuple(float(s) for s in grids["size_grid"])

    def tables(self, knob: Knob, context: BuildContext) -> StreamTableFactory:
        def build(name: str, n: int, d: int) -> EmbeddingTable:
            return EvictingEmbedding(
                n, d, capacity=_size(knob, context, name), policy=self.policy,  # type: ignore[arg-type]
                init_std=context.init_std, generator=context.generator,
            )  # fmt: skip

        return build


def _hierarchy_tables(
    levels: int, context: BuildContext, agent: AutoAssignConfig | None = None
) -> StreamTableFactory:
    """Hierarchical tables with ``levels`` levels; ``agent`` (a preset's configuration) says
    whether and how demoted rows are parked (None: freed) and whether level 1 is keyed by the
    context's side-feature groups."""

    def build(name: str, n: int, d: int) -> EmbeddingTable:
        options: dict[str, Any] = {}
        field_name = field_of(name, context.fields)
        groups = context.groups.get(field_name, 0)
        if agent is not None and field_name in agent.side_groups and groups:
            options.update(groups=groups)
        if agent is not None and agent.park:
            options.update(park=True, park_values=agent.park_values, park_state=agent.park_state)
        if agent is not None and agent.fresh_accumulator:
            options.update(fresh_accumulator=agent.fresh_accumulator)
        if agent is not None and agent.residual_until:
            options.update(residual_until=agent.residual_until)
        return HierarchicalSharedEmbedding(
            n, d, levels=levels, init_std=context.init_std, generator=context.generator, **options
        )

    return build


def hierarchy_thresholds(unique_after: int, levels: int) -> tuple[int, ...]:
    """``k`` thresholds spread evenly up to ``t_k = unique_after``: level ``j + 1`` from
    ``ceil(j · t_k / k)`` events. Example: ``t_k = 20, k = 3 -> (7, 14, 20)``."""
    return tuple(math.ceil(j * unique_after / levels) for j in range(1, levels + 1))


class ThresholdHierarchy(SharedEmbeddingMethod):
    """The same ``k``-level hierarchy as AutoAssign+, moved by fixed frequency thresholds."""

    name = "threshold_hierarchy"
    knob_name = "t_k"

    def knobs(self, grids: Mapping[str, tuple[Any, ...]]) -> tuple[Knob, ...]:
        return tuple(float(t) for t in grids["hierarchy_grid"])

    def tables(self, knob: Knob, context: BuildContext) -> StreamTableFactory:
        return _hierarchy_tables(context.agent.levels, context)

    def assigner(self, knob: Knob, context: BuildContext, model: StreamModel) -> Assigner:
        thresholds = hierarchy_thresholds(int(knob), context.agent.levels)
        return ThresholdHierarchyAssigner(model, thresholds)


class AutoAssignPlus(SharedEmbeddingMethod):
    """AutoAssign+: the ``k``-level hierarchy moved by the Identity Agent.

    Args:
        preset: the agent's preset over the experiment's agent configuration
            (:data:`~leanrec.search.shared_embedding.config.AGENT_PRESETS`): ``paper`` is the
            method ``autoassign``, any other is ``autoassign_<preset>``.
    """

    knob_name = "k"

    def __init__(self, preset: str = "paper") -> None:
        self.preset = preset
        self.name = "autoassign" if preset == "paper" else f"autoassign_{preset}"

    def knobs(self, grids: Mapping[str, tuple[Any, ...]]) -> tuple[Knob, ...]:
        return tuple(float(k) for k in grids["levels_grid"])

    def tables(self, knob: Knob, context: BuildContext) -> StreamTableFactory:
        return _hierarchy_tables(int(knob), context, agent_preset(context.agent, self.preset))

    def assigner(self, knob: Knob, context: BuildContext, model: StreamModel) -> Assigner:
        config = replace(context.agent, levels=int(knob), seed=context.seed)
        return AgentAssigner(model, agent_preset(config, self.preset))


METHODS: Registry[SharedEmbeddingMethod] = Registry("shared-embedding method")
"""Every method, in table order (baselines first, AutoAssign+ last)."""
for _method in (
    AllUnique(),
    FrequencyThreshold(),
    Hashing(),
    QuotientRemainder(),
    Evicting("lfu"),
    Evicting("lru"),
    ThresholdHierarchy(),
    AutoAssignPlus(),
    AutoAssignPlus("leanrec"),
):
    METHODS.add(_method)


def warmup_ids(stream_fields: tuple[str, ...], codes: Mapping[str, np.ndarray]) -> dict[str, int]:
    """Distinct IDs per field among the warm-up's codes."""
    return {f: len(np.unique(codes[f])) for f in stream_fields}


__all__ = [
    "METHODS",
    "AgentAssigner",
    "Assigner",
    "BuildContext",
    "FieldHierarchy",
    "SharedEmbeddingMethod",
    "ThresholdHierarchyAssigner",
    "chunk_ids",
    "field_hierarchies",
    "field_of",
    "hierarchy_thresholds",
    "warmup_ids",
]
