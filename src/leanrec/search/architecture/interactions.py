"""AMEIR Stage 2 search (Zhao et al., IJCAI 2021, Sec. 2.2-2.3): evolving Hadamard interactions.

The model parts (:func:`~leanrec.models.ctr.ameir.interactions.hadamard_interactions`, the
:class:`~leanrec.models.ctr.ameir.interactions.SEShortcut`) are in
:mod:`leanrec.models.ctr.ameir.interactions`; this module holds the search's side:

* :class:`InteractionSet` maps interactions named by field names
  (:data:`~leanrec.models.ctr.ameir.architecture.Interaction`) to field indices.
* Step 2's evolution bookkeeping: :func:`initial_population` (``p^b`` starts as the single
  fields ``e^b``), :func:`mutate` (every member ⊙ every field it does not hold, giving
  ``p^b'``) and :func:`select_top` (top-k by validation fitness).
* :class:`OneShotInteractionLayer`: the first hidden layer of Step 2's pre-defined MLP as a
  one-shot model. Projecting the concatenation ``[e_1, ..., e_N, p]`` equals summing the
  per-part projections ``Σ_i W_i e_i + W_p p``, so one sampled interaction costs one extra
  ``(hidden, d)`` projection and the weights ``W_p`` of every candidate live in a table that
  grows with the evolution and is inherited across cycles.

Example (3 fields, one evolution cycle):
    >>> names = ["user", "item", "city"]
    >>> population = initial_population(names)  # [("user",), ("item",), ("city",)]
    >>> candidates = mutate(population, names)  # [("item", "user"), ("city", "user"), ...]
    >>> layer = OneShotInteractionLayer(names, dim=8, hidden_dim=200, candidates=candidates)
    >>> fields = torch.randn(32, 3, 8)
    >>> layer(fields, candidates[0]).shape
    torch.Size([32, 200])
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch import nn

from leanrec.models.ctr.ameir.architecture import Interaction, interaction_name
from leanrec.models.ctr.ameir.interactions import hadamard_interactions, index_table

__all__ = [
    "InteractionSet",
    "OneShotInteractionLayer",
    "initial_population",
    "mutate",
    "select_top",
]


class InteractionSet:
    """An ordered set of interactions over a list of field names, with their index table.

    Interactions are named by sorted field names (:data:`Interaction`); this maps them to and
    from the positions of those fields in ``fields (B, F, d)`` (e.g.
    ``BehaviorEmbedder.field_names``). Single fields (order 1) are allowed, as in Step 2's
    initial population.

    Args:
        field_names: names of the ``F`` rows of ``fields``, distinct.
        interactions: the interactions, in output order (each canonicalised; no repeats).

    Example:
        >>> s = InteractionSet(["user", "item", "city"], [("item", "user"), ("city",)])
        >>> s.index_tensor()
        tensor([[ 1,  0],
                [ 2, -1]])
        >>> s(torch.randn(4, 3, 8)).shape
        torch.Size([4, 2, 8])
    """

    def __init__(
        self, field_names: Sequence[str], interactions: Sequence[Interaction] = ()
    ) -> None:
        self.field_names: tuple[str, ...] = tuple(field_names)
        if len(set(self.field_names)) != len(self.field_names):
            raise ValueError(f"field names must be distinct, got {list(self.field_names)}")
        self.position = {name: i for i, name in enumerate(self.field_names)}
        canonical = [self.canonical(i) for i in interactions]
        if len(set(canonical)) != len(canonical):
            raise ValueError("an interaction is listed twice")
        self.interactions: tuple[Interaction, ...] = tuple(canonical)

    def canonical(self, interaction: Sequence[str]) -> Interaction:
        """The sorted form of ``interaction``, checking its fields are known and distinct."""
        if len(interaction) == 0:
            raise ValueError("an interaction needs at least one field")
        unknown = [name for name in interaction if name not in self.position]
        if unknown:
            raise ValueError(
                f"unknown field(s) {unknown} in interaction {tuple(interaction)}; "
                f"known: {list(self.field_names)}"
            )
        return interaction_name(tuple(interaction))

    def indices(self, interaction: Sequence[str]) -> tuple[int, ...]:
        """Field positions of ``interaction``, in the order of its sorted names."""
        return tuple(self.position[name] for name in self.canonical(interaction))

    def interaction(self, indices: Sequence[int]) -> Interaction:
        """The interaction (sorted names) multiplying the fields at ``indices``."""
        bad = [int(i) for i in indices if not 0 <= int(i) < len(self.field_names)]
        if bad:
            raise ValueError(f"field indices {bad} outside [0, {len(self.field_names)})")
        return interaction_name(tuple(self.field_names[int(i)] for i in indices))

    def index_tensor(self, device: torch.device | str | None = None) -> torch.Tensor:
        """``(M, r_max)`` int64 index table of :attr:`interactions`, padded with -1."""
        return index_table([self.indices(i) for i in self.interactions], None).to(device)

    def __call__(self, fields: torch.Tensor) -> torch.Tensor:
        """``(B, F, d)`` -> ``(B, M, d)`` products of :attr:`interactions`."""
        if fields.shape[1] != len(self.field_names):
            raise ValueError(f"fields has {fields.shape[1]} rows, not {len(self.field_names)}")
        return hadamard_interactions(fields, self.index_tensor(fields.device))

    def __len__(self) -> int:
        return len(self.interactions)

    def __iter__(self) -> Iterator[Interaction]:
        return iter(self.interactions)


# ---------------------------------------------------------------------------------- evolution
def initial_population(field_names: Sequence[str]) -> list[Interaction]:
    """Step 2's starting ``p^b``: every non-sequential field on its own, in field order."""
    if len(set(field_names)) != len(field_names):
        raise ValueError(f"field names must be distinct, got {list(field_names)}")
    return [(name,) for name in field_names]


def mutate(population: Sequence[Interaction], field_names: Sequence[str]) -> list[Interaction]:
    """Step 2 (a): ``p^b'``, every member of ``p^b`` ⊙ every field it does not already hold.

    Each result is one order higher than its parent and canonical (sorted names); results
    reached from several parents appear once, at their first occurrence (parent order, then
    field order). The parents themselves are not included.

    Args:
        population: the current interactions ``p^b`` (any orders; names must be known).
        field_names: the non-sequential fields ``e^b``.

    Returns:
        The expanded candidates, deduplicated (empty when every member already holds every
        field).
    """
    known = InteractionSet(field_names)
    seen: dict[Interaction, None] = {}
    for member in population:
        parent = set(known.canonical(member))
        for name in known.field_names:
            if name not in parent:
                seen.setdefault(interaction_name((*parent, name)), None)
    return list(seen)


def select_top(
    candidates: Sequence[Interaction],
    scores: Sequence[float] | np.ndarray | torch.Tensor,
    k: int,
    higher_is_better: bool = True,
) -> list[Interaction]:
    """Step 2 (c): the ``k`` candidates with the best validation fitness, best first.

    Ties keep the candidates' order; NaN scores rank last. ``k`` larger than the number of
    candidates returns them all (sorted).

    Args:
        candidates: ``M`` interactions.
        scores: ``(M,)`` fitness of each (e.g. validation AUC; set ``higher_is_better=False``
            for a loss).
        k: how many to keep, >= 0.
        higher_is_better: whether larger scores are better.
    """
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    values = (
        scores.detach().cpu().double().numpy()
        if isinstance(scores, torch.Tensor)
        else np.asarray(scores, dtype=np.float64)
    ).reshape(-1)
    if len(values) != len(candidates):
        raise ValueError(f"{len(values)} scores for {len(candidates)} candidates")
    key = -values if higher_is_better else values.copy()
    key[np.isnan(key)] = np.inf
    order = np.argsort(key, kind="stable")[:k]
    return [candidates[i] for i in order]


# ---------------------------------------------------------------------------------- one-shot
class OneShotInteractionLayer(nn.Module):
    """First hidden layer of Step 2's pre-defined MLP over ``[e_1, ..., e_N, p]`` (pre-activation).

    Computes ``Σ_i W_i e_i + W_p p + b`` for one sampled interaction ``p`` — by the identity
    ``W [h_1, ..., h_N]ᵀ = Σ_i W_i h_iᵀ`` equal to a ``Linear`` over the concatenation of the
    fields and ``p`` — without computing the other candidates (Sec. 2.3, Step 2). ``W_p`` is
    kept per candidate in a table keyed by the interaction: :meth:`add_candidates` appends new
    ones and keeps the existing ones, so weights are inherited across evolution cycles.

    One interaction is used for the whole batch, as in the paper; ``None`` gives the fields-only
    output ``Σ_i W_i e_i + b``. Only the sampled ``W_p`` receives a gradient, so optimisers that
    skip parameters without a gradient (Adam, SGD with ``zero_grad(set_to_none=True)``) leave
    the other candidates untouched. Parameters added by :meth:`add_candidates` are new
    tensors: add them to the optimiser (or rebuild it). To reload a state dict, build the layer
    with the same :attr:`candidates` in the same order.

    Args:
        field_names: names of the ``N`` rows of ``fields`` (e.g.
            ``BehaviorEmbedder.field_names``), or just ``N``: then the fields are named
            ``"0", ..., "N-1"`` and interactions must use those names.
        dim: ``d``, width of every field and interaction.
        hidden_dim: width of the first hidden layer.
        candidates: initial candidates ``p^b'`` (any orders >= 1, canonicalised).
        generator: RNG for the initialisation (uniform ``±1/sqrt((N + 1) d)``, the default of a
            ``Linear`` over the concatenation).

    Shapes: ``fields (B, N, d)`` -> ``(B, hidden_dim)``.
    """

    def __init__(
        self,
        field_names: Sequence[str] | int,
        dim: int,
        hidden_dim: int,
        candidates: Sequence[Interaction] = (),
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        if isinstance(field_names, int):
            field_names = [str(i) for i in range(field_names)]
        self.interaction_set = InteractionSet(field_names)
        self.n_fields = len(self.interaction_set.field_names)
        self.dim = dim
        self.hidden_dim = hidden_dim
        self.init_bound = 1.0 / math.sqrt((self.n_fields + 1) * dim)
        self.field_projection = nn.Linear(self.n_fields * dim, hidden_dim)
        """``[W_1, ..., W_N]`` as one ``(hidden, N d)`` weight, and ``b``."""
        with torch.no_grad():
            self.field_projection.weight.uniform_(
                -self.init_bound, self.init_bound, generator=generator
            )
            self.field_projection.bias.uniform_(
                -self.init_bound, self.init_bound, generator=generator
            )
        self.candidate_weights = nn.ParameterList()
        """``W_p`` per candidate, ``(hidden, d)`` each, in :attr:`candidates` order."""
        self._slot: dict[Interaction, int] = {}
        self._indices: dict[Interaction, tuple[int, ...]] = {}
        self.add_candidates(candidates, generator)

    @property
    def field_names(self) -> tuple[str, ...]:
        return self.interaction_set.field_names

    @property
    def candidates(self) -> list[Interaction]:
        """Every candidate with a weight, in insertion order."""
        return list(self._slot)

    def __contains__(self, interaction: object) -> bool:
        return isinstance(interaction, tuple) and interaction in self._slot

    def add_candidates(
        self, new: Sequence[Interaction], generator: torch.Generator | None = None
    ) -> list[Interaction]:
        """Give a fresh ``W_p`` to every candidate of ``new`` not yet in the table.

        Existing weights are kept as they are (inherited). Returns the candidates actually
        added, canonicalised, in order.
        """
        added = []
        for interaction in new:  # over candidates (bookkeeping), not samples
            key = self.interaction_set.canonical(interaction)
            if key in self._slot:
                continue
            weight = torch.empty(
                self.hidden_dim, self.dim, device=self.field_projection.weight.device
            )
            weight.uniform_(-self.init_bound, self.init_bound, generator=generator)
            self._slot[key] = len(self.candidate_weights)
            self._indices[key] = self.interaction_set.indices(key)
            self.candidate_weights.append(nn.Parameter(weight))
            added.append(key)
        return added

    def candidate_weight(self, interaction: Interaction) -> nn.Parameter:
        """``W_p`` of ``interaction``, ``(hidden_dim, d)``."""
        key = self.interaction_set.canonical(interaction)
        if key not in self._slot:
            raise KeyError(f"interaction {key} is not a candidate of this layer")
        return self.candidate_weights[self._slot[key]]  # type: ignore[return-value]

    def forward(self, fields: torch.Tensor, interaction: Interaction | None = None) -> torch.Tensor:
        """``Σ_i W_i e_i + W_p p + b`` for ``fields (B, N, d)`` -> ``(B, hidden_dim)``."""
        if fields.dim() != 3 or fields.shape[1:] != (self.n_fields, self.dim):
            raise ValueError(
                f"fields must be (B, {self.n_fields}, {self.dim}), got {tuple(fields.shape)}"
            )
        out = self.field_projection(fields.reshape(fields.shape[0], -1))
        if interaction is None:
            return out
        weight = self.candidate_weight(interaction)
        key = self.interaction_set.canonical(interaction)
        product = hadamard_interactions(fields, [self._indices[key]])[:, 0, :]
        return out + product @ weight.t()
