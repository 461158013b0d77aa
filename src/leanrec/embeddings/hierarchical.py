"""Shared vectors in front of unique rows: :class:`HierarchicalSharedEmbedding` (AutoAssign+).

AutoAssign+ (arXiv 2308.06965) gives every ID field a hierarchy of ``k`` shared
vectors (levels ``1..k``) in front of the unique rows. An ID's **position** says what it reads:

* ``0``: not seen yet; reads level 1 like a new ID (cold start, nothing allocated);
* ``1..k``: the shared vector of that level (every ID at a level reads the same vector);
* ``k + 1``: its own unique row, held in a :class:`~leanrec.embeddings.GrowingEmbedding`.

A new ID starts at level 1 (``observe`` moves it from 0 to 1). The Identity Agent (or a rule)
moves IDs with :meth:`HierarchicalSharedEmbedding.move` (ascend / unchanged / descend, one
action per ID, vectorised) or :meth:`~HierarchicalSharedEmbedding.set_positions`. Ascending from
level ``k`` allocates a unique row initialised from the shared vector the ID had, so its
prediction does not jump; descending from the unique position frees the row (the bytes go when
the unique table compacts, i.e. when fewer than half its rows are used).

**Budget.** With ``max_bytes``, :meth:`nbytes` never exceeds it: a promotion that would need
more storage than the cap allows is refused (the ID stays at level ``k``); with a per-ID
``value`` (e.g. the critic's value of keeping a unique row), the current unique IDs and the
candidates compete on it and the lowest-value ones are demoted to level ``k`` first. Storage
grows by doubling, so the cap allows at most ``R`` unique rows, ``R`` the largest capacity
(``min_capacity * 2**j``) whose bytes fit. When new IDs make the per-ID state grow
(:meth:`extend_ids`), the least frequent unique IDs make room; a cap too small to hold the
per-ID state itself is an error (``ValueError``), never a silent excess.

**Bytes** (float32 rows of width ``d``; ``capacity`` and ``id_capacity`` as in
:class:`~leanrec.embeddings.GrowingEmbedding`)::

    nbytes = 4*d*capacity + 4*capacity        # unique rows and their row -> ID map (int32)
           + 4*d                              # the unique table's own fallback (held, unused)
           + 4*d*k                            # the k shared vectors
           + (4 + 1 + 4) * id_capacity        # per ID: row (int32), position (int8), count (int32)
           + (d + 4) * parked_capacity        # park=True: int8 rows, float16 scale and state
           + 4 * free_parked_slots            # park=True: the free list (int32)
           + 4*d + 8                          # park_state="profile": the column profile
           + 4*d*G + 6 * grouped              # groups=G: level 1's G vectors; the groups
                                              # of the IDs at positions 0 and 1 (int32 + int16)

A model reading a field through several slots (DeepFM's ``d``-wide vector and first-order
weight) holds one table of their summed width per field
(:class:`~leanrec.models.stream.StreamModel`), so these 9 bytes per ID are paid once per field.

The loss history an agent keeps per ID is the agent's state, counted by the agent beside this.

**Parked rows** (``park=True``). A demotion by :meth:`~HierarchicalSharedEmbedding.move` or
:meth:`~HierarchicalSharedEmbedding.set_positions` then does not throw the row away: the row is
quantised to int8 with one float16 scale per row (``scale = max|w| / 127``) and kept beside the
unique rows with a float16 summary of its optimiser state (the mean of Adagrad's sum of squares,
:meth:`~leanrec.embeddings.GrowingEmbedding.accumulators`). The ID sits at level ``k`` and
reads its dequantised row, not the shared vector; ascending again gives it a float row that
starts from the parked one (and from the parked optimiser state), and frees the parked slot.
A parked row costs ``d + 4`` bytes (int8 values, float16 scale, float16 optimiser summary)
against ``4d + 4`` for a float row. The optimiser summary is one mean for the row by default;
with ``park_state="profile"`` the row resumes at its mean times a per-table profile of the
columns (a first-order weight's sums are an order of magnitude above a vector column's), at no
more bytes per row; ``"log8"`` and ``"columns"`` keep every column's sum (``d`` and ``2d - 2``
bytes more per row), and ``park_values="float16"`` keeps the values unrounded (``d - 2`` more).
The parked slot of an ID is kept in the unique table's ID map as ``-2 - slot`` (``-1``: no row,
``>= 0``: a float row), so parking adds no per-ID bytes. Parked storage grows in blocks of
:data:`PARK_BLOCK` slots, by at least an eighth at a time (free slots: scale ``-1``, listed in
a free list of int32, 4 bytes each), and shrinks to the blocks its used slots need when fewer
than half are used. Demotions that a byte cap forces (the table's own ``max_bytes``, or
:meth:`~HierarchicalSharedEmbedding.free_rows`) free the row as before: parking would add
bytes where the cap wants fewer.

**Residual rows** (``residual_until = N > 0``). An ID that holds a row (float or parked) and
has fewer than ``N`` events reads level ``k``'s shared vector *plus* its row: the row is a
residual over the vector all young IDs share, and the shared vector takes a gradient from every
young ID's events. A row given to a young ID starts at its old level's vector minus level
``k``'s (the ID reads what it read before). When :meth:`~HierarchicalSharedEmbedding.observe`
counts an ID's ``N``-th event, level ``k``'s vector is added into its row (folded: what the ID
reads does not change) and the row stands alone from then on. Nothing is stored per ID for this
(youth is read off ``count_of_id``), so the bytes do not change.

**Level 1 keyed by groups** (``groups = G > 0``). Level 1 holds ``G`` vectors instead of one:
an ID with a group (:meth:`~HierarchicalSharedEmbedding.set_groups`, e.g. the bucket of its side
features: a user's age and gender, a movie's genre) reads its group's vector while it is at
position 0 or 1, and a row given to it on ascent from level 1 starts from that vector. An ID
without a group (``-1``, e.g. one met only while serving) reads ``shared[0]`` as before. The
group vectors are parameters like the levels; who sets them (an optimiser, or a mean of the
group's rows: :meth:`~HierarchicalSharedEmbedding.blend_groups`) is the caller's choice.
The table holds an ID's group only while the ID is at position 0 or 1, where it is read (a
sorted map of 6 bytes per such ID, no per-ID array): the caller gives the groups of the IDs it
is about to read (a stream: each chunk's IDs, from their events), and an ID that ascends past
level 1 drops its entry.

Example (``d = 2``, ``k = 2``, 4 IDs; by hand: ``nbytes = 0 + 8 + 16 + 9*4 = 60``):
    >>> table = HierarchicalSharedEmbedding(4, 2, levels=2, min_capacity=1)
    >>> table.observe(torch.tensor([0, 1, 0]))
    >>> table.positions(torch.arange(4)).tolist()
    [1, 1, 0, 0]
    >>> table.move(torch.tensor([0, 1]), torch.tensor([ASCEND, DESCEND])).tolist()
    [2, 1]
    >>> table.move(torch.tensor([0]), torch.tensor([ASCEND])).tolist()  # level k -> unique
    [3]
    >>> table.nbytes()  # one row: 4*2*1 + 4*1 + 60
    72
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import torch
from torch import nn

from leanrec.embeddings.counted import CountedRowsTable

DESCEND = 0
"""Action: one position down (unique -> level ``k`` frees the row; level 1 stays at 1)."""
UNCHANGED = 1
"""Action: keep the position."""
ASCEND = 2
"""Action: one position up (level ``k`` -> unique allocates a row; unique stays unique)."""

PARK_VALUES = ("int8", "float16")
"""How parked values may be stored (``park_values``)."""
PARK_STATES = ("mean", "profile", "log8", "columns")
"""How a parked row's optimiser state may be stored (``park_state``)."""
LOG8_STEPS = 8.0
"""``park_state="log8"``: codes per halving of a column's sum. A code is off by at most half a
step, a factor 2^(1/16) ≈ 1.04 on the sum (2% on Adagrad's step); 255 codes reach 2^-32 of the
row's largest sum (a column's sums span many octaves: a bias column's gradient is not a
vector column's)."""
SPEC_DEFAULTS: dict[str, Any] = {
    "park_values": "int8",
    "park_state": "mean",
    "fresh_accumulator": 0.0,
    "residual_until": 0,
    "groups": 0,
}
"""Spec options a table writes only when they differ from these defaults."""
PARK_BLOCK = 256
"""Parked storage grows and shrinks in blocks of this many slots."""
FREE_SLOT = -1.0
"""Scale of a free parked slot (a used slot's scale is >= 0)."""

PerIdValue = torch.Tensor | Callable[[torch.Tensor], torch.Tensor]
"""Value of holding a unique row: a tensor over all IDs ``(N,)`` or a callable ``(m,) -> (m,)``."""


def threshold_positions(counts: torch.Tensor, thresholds: Sequence[int]) -> torch.Tensor:
    """Positions from fixed frequency thresholds (the hierarchy without an agent).

    With ``k`` levels there are ``k`` thresholds ``t_1 <= ... <= t_k``: an ID seen fewer than
    ``t_1`` times is at level 1, from ``t_j`` to ``t_{j+1} - 1`` times at level ``j + 1``, and at
    least ``t_k`` times unique (position ``k + 1``). Shapes: ``(B,)`` counts -> ``(B,)`` int64.

    Example: thresholds ``(5, 20)`` (``k = 2``): counts ``[0, 4, 5, 19, 20]`` give positions
    ``[1, 1, 2, 2, 3]``.
    """
    edges = torch.as_tensor(list(thresholds), dtype=torch.int64)
    if len(edges) > 1 and bool((edges[1:] < edges[:-1]).any()):
        raise ValueError(f"thresholds must not decrease, got {list(thresholds)}")
    return 1 + torch.searchsorted(edges, counts.to(torch.int64), right=True)


class HierarchicalSharedEmbedding(CountedRowsTable):
    """``k`` shared vectors (levels) in front of unique rows, with per-ID positions and counts.

    Args:
        num_embeddings: IDs known so far (``N``); grows with :meth:`extend_ids`.
        embedding_dim: vector width ``d``.
        levels: number of shared levels ``k`` (AutoAssign+'s hierarchy size), 1..126.
        max_bytes: hard cap on :meth:`nbytes` (``None``: unbounded).
        min_capacity: smallest storage of the unique rows (see :class:`GrowingEmbedding`).
        compact_below: the unique rows compact when fewer than this share of them is used.
        init_std: std of the normal initialisation of the shared vectors (random, as in the
            paper) and of rows not initialised from a shared vector.
        sparse_grad: sparse gradients for the unique rows.
        generator: RNG for initialisations.
        park: a demoted ID's row is parked as int8 (module docstring) instead of freed.
        park_values: how a parked row's values are kept: ``"int8"`` (one float16 scale per
            row, ``d + 2`` bytes) or ``"float16"`` (``2d`` bytes, relative error 2^-11).
        park_state: how its optimiser state is kept: ``"mean"`` (float16 mean of Adagrad's
            per-column sums, 2 bytes; every column resumes at the mean), ``"profile"`` (the
            row's mean in bfloat16, 2 bytes, and one profile per table: the mean over every
            row parked so far of each column's sum over its row's mean; a column resumes at
            the row's mean times its profile, so a column whose gradients are larger than the
            others', such as a first-order weight beside a vector, keeps its smaller steps),
            ``"columns"`` (every column's sum, bfloat16, ``2d``
            bytes: a row resumes with the step size of each of its columns) or ``"log8"``
            (every column's sum on a log scale, one uint8 per column below the row's largest
            sum in bfloat16: ``d + 2`` bytes, each sum within a factor 2^(1/16)).
        fresh_accumulator: where a new row's (not a resumed parked row's) Adagrad sum of
            squared gradients starts (``a_0``); 0, Adagrad's default, makes its first step
            ``lr · sign(g)`` on every column whatever the gradient's size, ``a_0 > 0`` makes the
            first steps ``lr · g / sqrt(a_0 + g²)``, in proportion to the gradient.
        residual_until: ``N``; > 0: an ID that holds a row (float or parked) and has fewer
            than ``N`` events reads level ``k``'s shared vector plus its row, so its row is a
            residual over the vector every young ID shares (module docstring, *Residual
            rows*); 0: a row is read alone (the paper).
        groups: ``G``; > 0: level 1 holds ``G`` vectors, and an ID with a group (set by
            :meth:`set_groups`) reads its group's vector at positions 0 and 1 (module
            docstring, *Level 1 keyed by groups*); 0: one level-1 vector for every ID.

    Attributes:
        unique: the unique rows, a :class:`GrowingEmbedding` (its fallback vector is frozen and
            unused: shared vectors are ``shared``).
        shared: the level vectors, shape ``(k, d)``; level ``j`` is row ``j - 1``.
        position_of_id: position per ID (0 unseen, 1..k level, k+1 unique), int8
            ``(id_capacity,)``.
        count_of_id: events seen per ID (never reset), int32 ``(id_capacity,)``.
        parked_values: ``park=True``: int8 (or float16) ``(parked_capacity, d)``, the parked
            rows.
        parked_scale: float16 ``(parked_capacity,)``, a row's value is ``scale * int8``
            (1 with float16 values; :data:`FREE_SLOT` on a free slot).
        parked_accumulator: float16 ``(parked_capacity,)``, the row's mean sum of squared
            gradients when it was parked (0 without one); with ``park_state="columns"``
            bfloat16 ``(parked_capacity, d)``, each column's sum; with ``"log8"`` uint8
            ``(parked_capacity, d)``, column ``j``'s sum is ``top * 2^(-code_j / 8)``.
        parked_accumulator_top: ``park_state="log8"``: bfloat16 ``(parked_capacity,)``, the
            row's largest column sum (``top``; bfloat16 for float32's range: a young row's
            sums can be below float16's smallest).
        group_vectors: ``groups > 0``: level 1's vector per group, ``(G, d)``.
        grouped_ids: ``groups > 0``: the IDs at positions 0 and 1 that have a group, sorted,
            int32 ``(m,)``; ``grouped_group`` int16 ``(m,)`` their groups (an ID not listed
            reads ``shared[0]`` at level 1).
    """

    kind = "hierarchical"
    spec_options = (
        "levels", "max_bytes", "min_capacity", "compact_below", "init_std", "park",
        "park_values", "park_state", "fresh_accumulator", "residual_until", "groups",
    )  # fmt: skip
    per_id_state: ClassVar[dict[str, torch.dtype]] = {
        "position_of_id": torch.int8,
        "count_of_id": torch.int32,
    }
    resized_on_load = (
        "position_of_id", "count_of_id", "parked_values", "parked_scale", "parked_accumulator",
        "parked_accumulator_top", "grouped_ids", "grouped_group",
    )  # fmt: skip

    position_of_id: torch.Tensor
    grouped_ids: torch.Tensor
    grouped_group: torch.Tensor
    parked_values: torch.Tensor
    parked_scale: torch.Tensor
    parked_accumulator: torch.Tensor
    parked_accumulator_top: torch.Tensor
    parked_profile: torch.Tensor
    parked_profile_rows: torch.Tensor

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        levels: int = 3,
        max_bytes: int | None = None,
        min_capacity: int = 16,
        compact_below: float = 0.5,
        init_std: float = 0.01,
        sparse_grad: bool = False,
        generator: torch.Generator | None = None,
        park: bool = False,
        park_values: str = "int8",
        park_state: str = "mean",
        fresh_accumulator: float = 0.0,
        residual_until: int = 0,
        groups: int = 0,
    ) -> None:
        if residual_until < 0:
            raise ValueError(f"residual_until must be >= 0, got {residual_until}")
        if not 0 <= groups <= 32767:
            raise ValueError(f"groups must be in 0..32767 (int16 groups), got {groups}")
        if park_values not in PARK_VALUES or park_state not in PARK_STATES:
            raise ValueError(
                f"park_values must be one of {PARK_VALUES} and park_state one of {PARK_STATES}, "
                f"got {park_values!r}, {park_state!r}"
            )
        if not 1 <= levels <= 126:
            raise ValueError(f"levels must be in 1..126 (int8 positions), got {levels}")
        super().__init__(
            num_embeddings,
            embedding_dim,
            min_capacity,
            compact_below,
            init_std,
            sparse_grad,
            generator,
        )
        self.levels = levels
        self.max_bytes = max_bytes
        self.unique.fallback.requires_grad_(False)
        self.shared = nn.Parameter(torch.empty(levels, embedding_dim))
        with torch.no_grad():
            self.shared.normal_(0.0, init_std, generator=generator)
        self.park = park
        self.park_values = park_values
        self.park_state = park_state
        self.fresh_accumulator = float(fresh_accumulator)
        self.residual_until = int(residual_until)
        self.groups = int(groups)
        if groups:  # registered only when used: a table without them keeps its state-dict keys
            self.group_vectors = nn.Parameter(torch.empty(groups, embedding_dim))
            with torch.no_grad():
                self.group_vectors.normal_(0.0, init_std, generator=generator)
            self.register_buffer("grouped_ids", torch.zeros(0, dtype=torch.int32))
            self.register_buffer("grouped_group", torch.zeros(0, dtype=torch.int16))
        if park:  # registered only when used: a table without them keeps its state-dict keys
            self.register_buffer(
                "parked_values", torch.zeros(0, embedding_dim, dtype=self._values_dtype)
            )
            self.register_buffer("parked_scale", torch.zeros(0, dtype=torch.float16))
            self.register_buffer("parked_accumulator", self._empty_accumulator(0))
            if park_state == "profile":
                self.register_buffer("parked_profile", torch.ones(embedding_dim))
                self.register_buffer("parked_profile_rows", torch.zeros((), dtype=torch.int64))
            if park_state == "log8":
                self.register_buffer("parked_accumulator_top", torch.zeros(0, dtype=torch.bfloat16))
            self._parked_free = torch.zeros(0, dtype=torch.int32)
            """Free parked slots (a stack, int32); rebuilt on every relayout and load."""
        if max_bytes is not None and self.nbytes() > max_bytes:
            raise ValueError(
                f"max_bytes={max_bytes} is below the empty table's {self.nbytes()} bytes "
                f"({num_embeddings} IDs, d={embedding_dim}, k={levels})"
            )

    # ------------------------------------------------------------------ sizes
    @property
    def unique_position(self) -> int:
        """The position of an ID holding a unique row, ``k + 1``."""
        return self.levels + 1

    @property
    def num_unique(self) -> int:
        """IDs holding a unique row."""
        return self.unique.used_rows

    def num_parameters(self) -> int:
        """Values that carry information: the used unique rows, the ``k`` shared vectors and
        level 1's group vectors."""
        return (self.unique.used_rows + self.levels + self.groups) * self.embedding_dim

    def position_counts(self) -> torch.Tensor:
        """IDs per position ``0..k+1`` (0: known but unseen), int64 ``(k + 2,)``."""
        held = self.position_of_id[: self.num_embeddings].to(torch.int64)
        return torch.bincount(held, minlength=self.levels + 2)

    # ------------------------------------------------------------------ per-ID state
    def positions(self, ids: torch.Tensor) -> torch.Tensor:
        """Position of each ID (0 unseen, 1..k level, k+1 unique); ``(B,)`` -> ``(B,)`` int64."""
        self._check_ids(ids)
        return self.position_of_id[ids].to(torch.int64)

    # ------------------------------------------------------------------ lookups
    def lookup(self, ids: torch.Tensor) -> torch.Tensor:
        """``(B,)`` IDs -> ``(B, d)``: the unique row where held, the dequantised parked row
        where parked, else the level's vector."""
        rows = self.unique.rows(ids)
        level = self.position_of_id[ids].to(torch.int64).clamp(1, self.levels) - 1
        out = self.shared[level]
        if self.groups and len(self.grouped_ids):
            group = self._group_of(ids)
            grouped = (level == 0) & (group >= 0)
            at = self.group_vectors[group.clamp(min=0)]
            out = torch.where(grouped.unsqueeze(1), at, out)
        if self.unique.capacity > 0:
            own = nn.functional.embedding(
                rows.clamp(min=0), self.unique.weight, sparse=self.unique.sparse_grad
            )
            out = torch.where((rows >= 0).unsqueeze(1), own, out)
        if self.park:
            at = torch.nonzero(rows <= -2).reshape(-1)
            if len(at):
                out = out.index_put((at,), self._unpacked(-2 - rows[at]))
        if self.residual_until:
            # a young row holder reads level k's vector plus its row (its residual)
            young = (rows != -1) & (self.count_of_id[ids] < self.residual_until)
            out = out + young.unsqueeze(1).to(out.dtype) * self.shared[self.levels - 1]
        return out

    def _fold(self, ids: torch.Tensor) -> None:
        """Add level ``k``'s vector into the rows of ``ids`` (``(m,)``, young until now, each
        holding a float or parked row): what they read does not change, and from now on the
        row stands alone."""
        rows = self.unique.rows(ids)
        base = self.shared[self.levels - 1].detach()
        with torch.no_grad():
            held = rows[rows >= 0]
            if len(held):
                self.unique.weight[held] += base
            slots = -2 - rows[rows <= -2]
            if len(slots):
                packed, scale = self._pack(self._unpacked(slots) + base)
                self.parked_values[slots] = packed
                self.parked_scale[slots] = scale

    # ------------------------------------------------------------------ groups
    def _checked_groups(
        self, ids: torch.Tensor, groups: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.groups:
            raise ValueError("this table has no groups (groups=0)")
        ids = torch.as_tensor(ids, dtype=torch.int64).reshape(-1)
        groups = torch.as_tensor(groups, dtype=torch.int64).reshape(-1)
        if groups.shape != ids.shape:
            raise ValueError(f"need one group per ID: {tuple(groups.shape)} vs {len(ids)}")
        if len(groups) and (int(groups.min()) < -1 or int(groups.max()) >= self.groups):
            raise ValueError(f"groups must be in -1..{self.groups - 1}")
        self._check_ids(ids)
        return ids, groups

    def set_groups(self, ids: torch.Tensor, groups: torch.Tensor) -> None:
        """Give ``ids`` (``(B,)``, repeats allowed: the first one counts) their level-1 groups
        (``(B,)``, ``-1..G-1``; -1: none). Kept for the IDs now at positions 0 and 1 (those
        that read level 1); an ID above keeps nothing."""
        ids, groups = self._checked_groups(ids, groups)
        distinct, inverse = torch.unique(ids, return_inverse=True)
        first = torch.full((len(distinct),), len(ids), dtype=torch.int64)
        first.scatter_reduce_(0, inverse, torch.arange(len(ids)), "amin")
        group = groups[first]
        keep = (group >= 0) & (self.position_of_id[distinct] <= 1)
        old_ids = self.grouped_ids.to(torch.int64)
        stays = ~torch.isin(old_ids, distinct)
        merged = torch.cat([old_ids[stays], distinct[keep]])
        merged_group = torch.cat([self.grouped_group[stays].to(torch.int64), group[keep]])
        order = torch.argsort(merged)
        self.grouped_ids = merged[order].to(torch.int32)
        self.grouped_group = merged_group[order].to(torch.int16)

    def _group_of(self, ids: torch.Tensor) -> torch.Tensor:
        """``(B,)`` IDs -> their held groups ``(B,)`` int64 (-1: none held)."""
        known = self.grouped_ids.to(torch.int64)
        if len(known) == 0:
            return torch.full((len(ids),), -1, dtype=torch.int64)
        at = torch.searchsorted(known, ids).clamp(max=len(known) - 1)
        found = known[at] == ids
        return torch.where(found, self.grouped_group[at].to(torch.int64), -1)

    def group_of(self, ids: torch.Tensor) -> torch.Tensor:
        """Each ID's level-1 group (-1: none held: no group given, or the ID is above level
        1); ``(B,)`` -> ``(B,)`` int64."""
        ids = torch.as_tensor(ids, dtype=torch.int64).reshape(-1)
        self._check_ids(ids)
        if not self.groups:
            return torch.full((len(ids),), -1, dtype=torch.int64)
        return self._group_of(ids)

    def _drop_groups_above_level_1(self) -> None:
        """Forget the groups of IDs that ascended past level 1 (they no longer read it)."""
        if self.groups and len(self.grouped_ids):
            low = self.position_of_id[self.grouped_ids.to(torch.int64)] <= 1
            if not bool(low.all()):
                self.grouped_ids = self.grouped_ids[low]
                self.grouped_group = self.grouped_group[low]

    @torch.no_grad()
    def blend_groups(
        self, ids: torch.Tensor, groups: torch.Tensor, rate: torch.Tensor | float
    ) -> torch.Tensor:
        """Move each group's vector towards the mean of what ``ids`` (``(m,)``, distinct) of
        that group (``groups``, ``(m,)``; -1: none) read now, by ``rate`` (a float, or one per
        group ``(G,)``): ``v_g <- (1 - r_g) v_g + r_g * mean_{i in g} x_i``. IDs without a group
        are left out; a group without one of ``ids`` is unchanged. Returns the number of
        ``ids`` per group, int64 ``(G,)``."""
        ids, group = self._checked_groups(ids, groups)
        ids, group = ids[group >= 0], group[group >= 0]
        members = torch.bincount(group, minlength=self.groups)
        if len(ids) == 0:
            return members
        sums = torch.zeros(self.groups, self.embedding_dim).index_add_(0, group, self.lookup(ids))
        present = members > 0
        means = sums[present] / members[present].unsqueeze(1).to(sums.dtype)
        r = torch.as_tensor(rate, dtype=sums.dtype).expand(self.groups)[present].unsqueeze(1)
        self.group_vectors[present] = (1 - r) * self.group_vectors[present] + r * means
        return members

    # ------------------------------------------------------------------ parked rows
    @property
    def num_parked(self) -> int:
        """IDs whose row is parked (int8)."""
        return int((self.parked_scale >= 0).sum()) if self.park else 0

    def is_parked(self, ids: torch.Tensor) -> torch.Tensor:
        """Whether each ID's row is parked; ``(B,)`` -> ``(B,)`` bool."""
        return self.unique.rows(ids) <= -2

    @property
    def _values_dtype(self) -> torch.dtype:
        return torch.int8 if self.park_values == "int8" else torch.float16

    def _empty_accumulator(self, capacity: int) -> torch.Tensor:
        """Zeroed parked optimiser state: float16 ``(capacity,)`` (``mean``), bfloat16
        ``(capacity, d)`` (``columns``: bfloat16 keeps float32's range, so a young row's small
        sums do not underflow) or uint8 codes ``(capacity, d)`` (``log8``)."""
        if self.park_state == "columns":
            return torch.zeros(capacity, self.embedding_dim, dtype=torch.bfloat16)
        if self.park_state == "log8":
            return torch.zeros(capacity, self.embedding_dim, dtype=torch.uint8)
        if self.park_state == "profile":  # bfloat16: a young row's mean is below float16's
            return torch.zeros(capacity, dtype=torch.bfloat16)
        return torch.zeros(capacity, dtype=torch.float16)

    def _store_state(self, slots: torch.Tensor, accumulator: torch.Tensor | None) -> None:
        """Keep the optimiser state of rows parked in ``slots``: ``accumulator`` is ``(m,)``
        (``mean``) or ``(m, d)`` (per column), None when the optimiser keeps none yet."""
        if accumulator is None:
            self.parked_accumulator[slots] = 0
            if self.park_state == "log8":
                self.parked_accumulator_top[slots] = 0.0
        elif self.park_state == "columns":
            self.parked_accumulator[slots] = accumulator.to(torch.bfloat16)
        elif self.park_state == "profile":
            mean = accumulator.mean(dim=1)
            self.parked_accumulator[slots] = mean.to(torch.bfloat16)
            # the running mean, over every row parked so far, of each column's share of its
            # row's mean (rows whose optimiser has not stepped yet carry no shape)
            stepped = mean > 0
            if bool(stepped.any()):
                shape = accumulator[stepped] / mean[stepped].unsqueeze(1)
                seen = int(self.parked_profile_rows)
                total = seen + len(shape)
                self.parked_profile.mul_(seen / total).add_(shape.sum(dim=0) / total)
                self.parked_profile_rows.fill_(total)
        elif self.park_state == "log8":
            # bfloat16 keeps the tiny sums of young rows (float16 would flush them to 0)
            top = accumulator.amax(dim=1).to(torch.bfloat16)
            floor = torch.finfo(torch.float32).tiny
            ratio = accumulator / top.float().clamp(min=floor).unsqueeze(1)
            code = -LOG8_STEPS * torch.log2(ratio.clamp(min=2.0 ** (-255 / LOG8_STEPS)))
            self.parked_accumulator[slots] = code.round().clamp(0, 255).to(torch.uint8)
            self.parked_accumulator_top[slots] = top
        else:
            self.parked_accumulator[slots] = accumulator.clamp(max=6e4).to(torch.float16)

    def _read_state(self, slots: torch.Tensor) -> torch.Tensor:
        """The parked optimiser state of ``slots``, float32 ``(m,)`` or ``(m, d)``."""
        if self.park_state == "log8":
            top = self.parked_accumulator_top[slots].float().unsqueeze(1)
            return top * torch.exp2(-self.parked_accumulator[slots].float() / LOG8_STEPS)
        if self.park_state == "profile":
            mean = self.parked_accumulator[slots].float().unsqueeze(1)
            return mean * self.parked_profile.unsqueeze(0)
        return self.parked_accumulator[slots].float()

    def _unpacked(self, slots: torch.Tensor) -> torch.Tensor:
        """Parked rows as float32 ``(m, d)``: ``scale * int8`` (float16 values as they are)."""
        if self.park_values == "float16":
            return self.parked_values[slots].float()
        scale = self.parked_scale[slots].float().unsqueeze(1)
        return self.parked_values[slots].float() * scale

    def _park(self, ids: torch.Tensor) -> None:
        """Quantise the float rows of ``ids`` (``(m,)``, each holding one) into parked slots
        and free the float rows; the ID map then holds ``-2 - slot``."""
        rows = self.unique.rows(ids)
        with torch.no_grad():
            values = self.unique.weight[rows].detach().float()
        accumulator = self.unique.accumulators(rows, columns=self.park_state != "mean")
        packed, scale = self._pack(values)
        slots = self._free_slots(len(ids))
        self.parked_values[slots] = packed
        self.parked_scale[slots] = scale
        self._store_state(slots, accumulator)
        self.unique.free(ids)
        self.unique.row_of_id[ids] = (-2 - slots).to(torch.int32)

    def _pack(self, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """float32 rows ``(m, d)`` -> parked values ``(m, d)`` (int8 or float16) and their
        float16 scales ``(m,)`` (``max|w| / 127``; 1 with float16 values)."""
        if self.park_values == "float16":
            packed = values.clamp(-6e4, 6e4).to(torch.float16)
            return packed, torch.ones(len(values), dtype=torch.float16)
        scale = (values.abs().amax(dim=1) / 127.0).to(torch.float16)
        step = scale.float().clamp(min=torch.finfo(torch.float32).tiny).unsqueeze(1)
        return torch.round(values / step).clamp(-127, 127).to(torch.int8), scale

    def _free_slots(self, m: int) -> torch.Tensor:
        """``m`` free parked slots, int64 ``(m,)``, taken from the free list; storage grows
        first when too few are free (to the next block at least an eighth larger, so growth
        costs O(1) amortised per parked row)."""
        if len(self._parked_free) < m:
            old = len(self.parked_scale)
            need = old + m - len(self._parked_free)
            grown = -(-max(need, old + old // 8) // PARK_BLOCK) * PARK_BLOCK
            self._parked_storage(torch.arange(old), grown)
        slots = self._parked_free[-m:].to(torch.int64) if m else torch.zeros(0, dtype=torch.int64)
        self._parked_free = self._parked_free[: len(self._parked_free) - m]
        return slots

    def _parked_storage(self, source: torch.Tensor, capacity: int) -> None:
        """New parked storage of ``capacity`` slots holding old slots ``source`` at
        ``0..len(source)-1`` (free slots of ``source`` stay free); the free list is rebuilt."""
        values = torch.zeros(capacity, self.embedding_dim, dtype=self._values_dtype)
        scale = torch.full((capacity,), FREE_SLOT, dtype=torch.float16)
        accumulator = self._empty_accumulator(capacity)
        m = len(source)
        values[:m] = self.parked_values[source]
        scale[:m] = self.parked_scale[source]
        accumulator[:m] = self.parked_accumulator[source]
        self.parked_values, self.parked_scale = values, scale
        self.parked_accumulator = accumulator
        if self.park_state == "log8":
            top = torch.zeros(capacity, dtype=torch.bfloat16)
            top[:m] = self.parked_accumulator_top[source]
            self.parked_accumulator_top = top
        self._rebuild_free_list()

    def _rebuild_free_list(self) -> None:
        """The free parked slots, highest first (so the lowest are taken first), int32."""
        free = torch.nonzero(self.parked_scale < 0).reshape(-1).flip(0)
        self._parked_free = free.to(torch.int32)

    def _unpark(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Take the parked rows of ``ids`` (``(m,)``, all parked) out of their slots: their
        float32 values ``(m, d)`` and optimiser state ``(m,)`` (``columns``: ``(m, d)``). The
        ID map entries are left for the caller's allocation to overwrite; storage shrinks when
        under half used."""
        slots = -2 - self.unique.rows(ids)
        values = self._unpacked(slots)
        accumulator = self._read_state(slots)
        self.parked_scale[slots] = FREE_SLOT
        self._parked_free = torch.cat([self._parked_free, slots.to(torch.int32)])
        self.unique.row_of_id[ids] = -1
        capacity = len(self.parked_scale)
        used = capacity - len(self._parked_free)
        if capacity > PARK_BLOCK and used < capacity // 2:
            # relabel the parked IDs' slots (one scan of the ID map; rare: storage halves)
            kept = torch.nonzero(self.parked_scale >= 0).reshape(-1)
            codes = self.unique.row_of_id[: self.num_embeddings].to(torch.int64)
            parked_ids = torch.nonzero(codes <= -2).reshape(-1)
            new_slot = torch.full((capacity,), -1, dtype=torch.int64)
            new_slot[kept] = torch.arange(len(kept))
            self.unique.row_of_id[parked_ids] = (-2 - new_slot[-2 - codes[parked_ids]]).to(
                torch.int32
            )
            self._parked_storage(kept, max(PARK_BLOCK, -(-len(kept) // PARK_BLOCK) * PARK_BLOCK))
        return values, accumulator

    def spec(self) -> dict[str, Any]:
        """As :meth:`StreamTable.spec`, without the parking options left at their defaults
        (:data:`SPEC_DEFAULTS`), so a table that does not use them writes the spec it wrote
        before they existed; a spec without them rebuilds with the defaults."""
        return {k: v for k, v in super().spec().items() if SPEC_DEFAULTS.get(k, ...) != v}

    def nbytes(self) -> int:
        """The formula of the module docstring, plus the free list of parked slots (int32)."""
        free = self._parked_free if self.park else None
        return super().nbytes() + (0 if free is None else 4 * len(free))

    def set_extra_state(self, state: dict[str, int]) -> None:
        super().set_extra_state(state)
        if self.park:
            self._rebuild_free_list()

    # ------------------------------------------------------------------ stream
    def extend_ids(self, num_embeddings: int) -> None:
        """Accept IDs up to ``num_embeddings - 1`` (position 0, count 0). Under a cap, when the
        per-ID state grows, the least frequent unique IDs are demoted to level ``k`` to keep
        :meth:`nbytes` within it; ``ValueError`` if the cap cannot hold the per-ID state."""
        if num_embeddings <= self.num_embeddings:
            return
        old_id_capacity = self.unique.id_capacity
        new_id_capacity = (
            old_id_capacity
            if num_embeddings <= old_id_capacity
            else max(num_embeddings, 2 * old_id_capacity)
        )
        if self.max_bytes is not None and new_id_capacity > old_id_capacity:
            grown = (new_id_capacity - old_id_capacity) * self._bytes_per_id()
            budget = self._row_budget(extra_bytes=grown)
            if budget < 0:
                raise ValueError(
                    f"max_bytes={self.max_bytes} cannot hold the per-ID state of "
                    f"{num_embeddings} IDs (id_capacity {new_id_capacity}): "
                    f"{self._fixed_bytes() + grown} bytes before any unique row"
                )
            if self.unique.used_rows > budget:
                holders = self._holders()
                order = torch.argsort(self.count_of_id[holders], stable=True)
                self._demote(holders[order[: self.unique.used_rows - budget]])
            if self.unique.capacity > budget:
                self.unique.compact()
        super().extend_ids(num_embeddings)

    def observe(self, ids: torch.Tensor) -> None:
        """Count the chunk's events per ID; an ID seen for the first time goes to level 1.
        With ``residual_until = N``, a row holder whose count reaches ``N`` in this chunk has
        level ``k``'s vector folded into its row (:meth:`_fold`) before the chunk is learnt."""
        if self.residual_until:
            ids = torch.as_tensor(ids, dtype=torch.int64).reshape(-1)
            self._check_ids(ids)
            seen, times = torch.unique(ids, return_counts=True)
            before = self.count_of_id[seen].to(torch.int64)
            crossing = (before < self.residual_until) & (before + times >= self.residual_until)
            grown = seen[crossing]
            grown = grown[self.unique.rows(grown) != -1]
            if len(grown):
                self._fold(grown)
        distinct = self._count_events(ids)
        first_seen = distinct[self.position_of_id[distinct] == 0]
        self.position_of_id[first_seen] = 1

    # ------------------------------------------------------------------ moves
    def move(
        self, ids: torch.Tensor, actions: torch.Tensor, value: PerIdValue | None = None
    ) -> torch.Tensor:
        """Apply one action per ID (``DESCEND`` 0, ``UNCHANGED`` 1, ``ASCEND`` 2).

        Args:
            ids: distinct IDs, int64 ``(B,)``. An unseen ID (position 0) moves from level 1.
            actions: int ``(B,)`` in ``{0, 1, 2}`` (the agent's action index; the position
                changes by ``action - 1``, clamped to ``1..k+1``).
            value: per-ID value of a unique row; under ``max_bytes`` the lowest-value unique
                IDs are demoted to make room for higher-value promotions. Without it, a
                promotion the cap cannot hold is refused.

        Returns:
            The positions after the move, int64 ``(B,)`` (a refused promotion shows ``k``).
        """
        ids = torch.as_tensor(ids, dtype=torch.int64).reshape(-1)
        actions = torch.as_tensor(actions, dtype=torch.int64).reshape(-1)
        if actions.shape != ids.shape:
            raise ValueError(f"need one action per ID: {tuple(actions.shape)} vs {len(ids)}")
        if len(actions) and (int(actions.min()) < DESCEND or int(actions.max()) > ASCEND):
            raise ValueError("actions must be DESCEND (0), UNCHANGED (1) or ASCEND (2)")
        current = self.positions(ids).clamp(min=1)
        target = (current + actions - 1).clamp(1, self.unique_position)
        return self._assign(ids, target, value)

    def set_positions(
        self, ids: torch.Tensor, positions: torch.Tensor, value: PerIdValue | None = None
    ) -> torch.Tensor:
        """Put each of ``ids`` (distinct, ``(B,)``) at ``positions`` (``1..k+1``), e.g. from
        :func:`threshold_positions`; same cap rules and return value as :meth:`move`."""
        ids = torch.as_tensor(ids, dtype=torch.int64).reshape(-1)
        target = torch.as_tensor(positions, dtype=torch.int64).reshape(-1)
        if target.shape != ids.shape:
            raise ValueError(f"need one position per ID: {tuple(target.shape)} vs {len(ids)}")
        if len(target) and (int(target.min()) < 1 or int(target.max()) > self.unique_position):
            raise ValueError(f"positions must be in 1..{self.unique_position}")
        self._check_ids(ids)
        return self._assign(ids, target.clone(), value)

    def _assign(
        self, ids: torch.Tensor, target: torch.Tensor, value: PerIdValue | None
    ) -> torch.Tensor:
        """Move ``ids`` to ``target`` positions: free rows of demoted IDs, then allocate rows
        for promoted ones (initialised from their shared vector), within the byte cap."""
        if len(torch.unique(ids)) != len(ids):
            raise ValueError("ids must be distinct (one decision per ID)")
        top = self.unique_position
        current = self.position_of_id[ids].to(torch.int64)
        holds = current == top
        demoted = ids[holds & (target < top)]
        promote_at = torch.nonzero(~holds & (target == top)).reshape(-1)
        displaced = torch.zeros(0, dtype=torch.int64)
        budget = None if self.max_bytes is None else self._row_budget()
        if budget is not None:
            if budget < 0:
                raise RuntimeError(f"the table already exceeds max_bytes={self.max_bytes}")
            kept = self.unique.used_rows - len(demoted)
            if kept + len(promote_at) > budget:
                if value is None:
                    refused_at = promote_at[max(0, budget - kept) :]
                    promote_at = promote_at[: max(0, budget - kept)]
                else:
                    promote_at, refused_at, displaced = self._compete(
                        ids, demoted, promote_at, budget, value
                    )
                    # a holder asked to stay unique may lose its row to a higher value
                    target[torch.isin(ids, displaced)] = self.levels
                target[refused_at] = self.levels
        if self.park and len(demoted):
            self._park(demoted)
            self.position_of_id[demoted] = self.levels
            self._demote(displaced)
        else:
            self._demote(torch.cat([demoted, displaced]))
        if budget is not None and self.unique.capacity > budget:
            self.unique.compact()
        promoted = ids[promote_at]
        if len(promoted):
            had_level = current[promote_at].clamp(1, self.levels) - 1
            init = self.shared[had_level].detach().clone()
            if self.groups:  # from level 1, a grouped ID's row starts at its group's vector
                group = self._group_of(promoted)
                grouped = torch.nonzero((had_level == 0) & (group >= 0)).reshape(-1)
                init[grouped] = self.group_vectors[group[grouped]].detach()
            if self.residual_until:  # a young ID's row is a residual: it reads the same vector
                young = self.count_of_id[promoted] < self.residual_until
                init[young] -= self.shared[self.levels - 1].detach()
            accumulator = None
            if self.fresh_accumulator:
                accumulator = torch.full((len(promoted),), self.fresh_accumulator)
            if self.park:
                parked = torch.nonzero(self.is_parked(promoted)).reshape(-1)
                if len(parked):
                    values, summary = self._unpark(promoted[parked])
                    init[parked] = values
                    start = torch.full((len(promoted),), self.fresh_accumulator)
                    if summary.dim() == 2:
                        start = start.unsqueeze(1).expand(-1, self.embedding_dim).clone()
                    start[parked] = summary
                    accumulator = start
            self.unique.allocate(promoted, init=init, accumulator=accumulator)
        self.position_of_id[ids] = target.to(torch.int8)
        self._drop_groups_above_level_1()
        return target

    def _compete(
        self,
        ids: torch.Tensor,
        demoted: torch.Tensor,
        promote_at: torch.Tensor,
        budget: int,
        value: PerIdValue,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Unique holders that stay and candidates compete for ``budget`` rows by ``value``
        (ties keep holders). Returns (accepted candidate slots, refused candidate slots,
        displaced holders)."""
        holders = self._holders()
        staying = holders[~torch.isin(holders, demoted)]
        candidates = ids[promote_at]
        pool = torch.cat([staying, candidates])
        worth = value[pool] if isinstance(value, torch.Tensor) else value(pool)
        order = torch.argsort(-worth.to(torch.float64), stable=True)
        chosen = torch.zeros(len(pool), dtype=torch.bool)
        chosen[order[:budget]] = True
        is_candidate_chosen = chosen[len(staying) :]
        return (
            promote_at[is_candidate_chosen],
            promote_at[~is_candidate_chosen],
            staying[~chosen[: len(staying)]],
        )

    def _holders(self) -> torch.Tensor:
        """IDs holding a unique row, in row order, int64 ``(used,)``."""
        id_of_row = self.unique.id_of_row
        return id_of_row[id_of_row >= 0].to(torch.int64)

    def free_rows(self, ids: torch.Tensor) -> None:
        """IDs (``(m,)``, each holding a unique row) lose their row, freed even with ``park``,
        and go to level ``k``: a byte cap wants the bytes gone, not parked."""
        self._demote(torch.as_tensor(ids, dtype=torch.int64).reshape(-1))

    def _demote(self, ids: torch.Tensor) -> None:
        """Unique IDs lose their row and go to level ``k``."""
        if len(ids):
            self.unique.free(ids)
            self.position_of_id[ids] = self.levels

    # ------------------------------------------------------------------ byte budget
    def _bytes_per_id(self) -> int:
        return (
            self.unique.row_of_id.element_size()
            + self.position_of_id.element_size()
            + self.count_of_id.element_size()
        )

    def _bytes_per_row(self) -> int:
        return (
            self.embedding_dim * self.unique.weight.element_size()
            + self.unique.id_of_row.element_size()
        )

    def _fixed_bytes(self) -> int:
        """Bytes that do not depend on the unique capacity (shared vectors, per-ID state)."""
        return self.nbytes() - self._bytes_per_row() * self.unique.capacity

    def _row_budget(self, extra_bytes: int = 0) -> int:
        """Most unique rows ``max_bytes`` allows with ``extra_bytes`` more per-ID state: the
        largest capacity storage can reach (``min_capacity * 2**j``) whose bytes fit; 0 if none
        fits and no storage exists yet; -1 if the cap cannot be held at all (storage, once
        created, never shrinks below ``min_capacity`` rows)."""
        assert self.max_bytes is not None
        room = self.max_bytes - self._fixed_bytes() - extra_bytes
        per_row = self._bytes_per_row()
        rows = self.unique.min_capacity
        if room < rows * per_row:
            return 0 if room >= 0 and self.unique.capacity == 0 else -1
        while room >= 2 * rows * per_row:
            rows *= 2
        return rows

    def extra_repr(self) -> str:
        return (
            f"{super().extra_repr()}, levels={self.levels}, unique={self.num_unique}, "
            f"max_bytes={self.max_bytes}"
        )
