"""The sequential-model contract: a sequence encoder plus dot-product scoring.

A next-item model is split in two so that any encoder (GRU4Rec, SASRec, an architecture found by
search) plugs into the same scoring, trainer and evaluation:

* :class:`SequenceEncoder` maps item IDs ``(B, N)`` (``0`` = padding, right-aligned) and their
  embeddings ``(B, N, d)`` to hidden states ``(B, N, d)``. The hidden state at position ``t``
  summarises the items at positions ``<= t`` and is used to predict the item at ``t + 1``.
* :class:`NextItemModel` owns the item :class:`~leanrec.embeddings.EmbeddingTable`
  (``n_items + 1`` rows, row 0 = padding), looks the input IDs up in it, runs the encoder, and
  scores item ``j`` for position ``t`` as ``h_t · e_j`` with the *same* table (shared input and
  output embeddings, as SASRec and BERT4Rec do).

Encoder contract (checked by ``tests/models/seq/contract.py`` for every encoder):

- output shape ``(B, N, output_dim)`` float32 for any ``1 <= N <= max_length``;
- **causal**: the output at position ``t`` does not change when an item at a position ``> t``
  changes;
- **padding invariant**: the outputs at the real positions of a sequence do not depend on how
  many padding columns precede it (``[0, 0, a, b]`` and ``[a, b]`` agree on ``a`` and ``b``);
- deterministic in eval mode.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence

import torch
from torch import nn

from leanrec.data.sequential import PADDING_ID
from leanrec.embeddings.base import EmbeddingTable, TableFactory
from leanrec.embeddings.full import FullTableFactory
from leanrec.models.requests import check_histories, check_list_length, pad_past_unrankable

ITEM_INIT_STD = 0.02
"""Standard deviation of the default item-table initialisation (BERT4Rec's 0.02)."""

__all__ = ["ITEM_INIT_STD", "NextItemModel", "SequenceEncoder"]


class SequenceEncoder(nn.Module, ABC):
    """Maps a batch of right-aligned item-ID sequences to one hidden state per position.

    Subclasses set :attr:`output_dim` (must equal the item table's width) and
    :attr:`max_length` (``None`` when any length works) and implement :meth:`forward`.
    """

    output_dim: int
    """Width ``d`` of the hidden states (= the item embedding width)."""
    max_length: int | None = None
    """Longest supported ``N`` (e.g. the size of a positional table); ``None``: unbounded."""

    @abstractmethod
    def forward(self, item_ids: torch.Tensor, item_embeddings: torch.Tensor) -> torch.Tensor:
        """Hidden state per position.

        Args:
            item_ids: int64 ``(B, N)``, right-aligned, ``0`` = padding (tells the encoder which
                positions are real).
            item_embeddings: float ``(B, N, d)``, the item table's vectors of ``item_ids``, zero
                at padding positions.

        Returns:
            float ``(B, N, output_dim)``; values at padding positions are unspecified (never
            scored).
        """


class NextItemModel(nn.Module):
    """Next-item retrieval model: item table + :class:`SequenceEncoder` + dot-product scores.

    Args:
        n_items: number of real items ``I``; IDs are ``1..I`` and ``0`` is padding.
        encoder: the sequence encoder; its ``output_dim`` is the table width ``d``.
        table_factory: builds the item table ``("item", I + 1, d)``; default a full table with
            normal(0, 0.02) initialisation.

    Example:
        >>> from leanrec.models.seq import GRU4Rec, GRU4RecConfig
        >>> model = NextItemModel(100, GRU4Rec(GRU4RecConfig(embedding_dim=8)))
        >>> ids = torch.tensor([[0, 3, 7], [1, 2, 5]])
        >>> model(ids).shape, model.score_all(ids).shape
        (torch.Size([2, 3, 8]), torch.Size([2, 101]))
    """

    def __init__(
        self,
        n_items: int,
        encoder: SequenceEncoder,
        table_factory: TableFactory | None = None,
    ) -> None:
        super().__init__()
        if n_items < 1:
            raise ValueError(f"n_items must be positive, got {n_items}")
        self.n_items = n_items
        self.encoder = encoder
        self.history_length: int | None = None
        """Most recent items :meth:`windows` reads: the window ``N`` the model was trained on
        (set by the trainer's caller, kept in the model file); None: the encoder's
        ``max_length``, or the whole history when the encoder takes any length."""
        factory = table_factory or FullTableFactory(init_std=ITEM_INIT_STD)
        self.item_table: EmbeddingTable = factory("item", n_items + 1, encoder.output_dim)
        if self.item_table.embedding_dim != encoder.output_dim:
            raise ValueError(
                f"item table width {self.item_table.embedding_dim} != encoder output_dim "
                f"{encoder.output_dim}"
            )

    @property
    def embedding_dim(self) -> int:
        """Width ``d`` of item vectors and hidden states."""
        return self.encoder.output_dim

    def embedding_tables(self) -> dict[str, EmbeddingTable]:
        """ID tables by attribute name: ``{"item_table": table}`` (inputs and outputs share it)."""
        return {"item_table": self.item_table}

    def item_vectors(self, item_ids: torch.Tensor) -> torch.Tensor:
        """Item vectors of IDs of any shape ``S`` -> ``S + (d,)``."""
        flat = self.item_table.lookup(item_ids.reshape(-1))
        return flat.reshape(*item_ids.shape, flat.shape[-1])

    def forward(
        self, item_ids: torch.Tensor, item_embeddings: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Hidden states ``(B, N, d)`` of right-aligned sequences ``(B, N)`` (0 = padding).

        Args:
            item_ids: int64 ``(B, N)``.
            item_embeddings: optional ``(B, N, d)`` table vectors of ``item_ids`` already looked
                up (the trainer looks up inputs, targets and negatives in one call, so the
                table's gradient is built once per step); padding rows are zeroed here.
        """
        if item_ids.ndim != 2:
            raise ValueError(f"item_ids must have shape (B, N), got {tuple(item_ids.shape)}")
        limit = self.encoder.max_length
        if limit is not None and item_ids.shape[1] > limit:
            raise ValueError(f"sequence length {item_ids.shape[1]} exceeds max_length {limit}")
        if item_embeddings is None:
            item_embeddings = self.item_vectors(item_ids)
        real = (item_ids != PADDING_ID).unsqueeze(-1)
        return self.encoder(item_ids, item_embeddings * real)

    def last_hidden(self, item_ids: torch.Tensor) -> torch.Tensor:
        """Hidden state at the last (most recent) position, ``(B, N) -> (B, d)``."""
        return self(item_ids)[:, -1]

    def score_candidates(self, item_ids: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
        """Scores of candidate IDs ``(B, C)`` for the next item after ``item_ids`` ``(B, N)``."""
        hidden = self.last_hidden(item_ids)  # (B, d)
        return torch.einsum("bd,bcd->bc", hidden, self.item_vectors(candidates))

    def score_all(self, item_ids: torch.Tensor) -> torch.Tensor:
        """Scores of every ID ``(B, N) -> (B, I + 1)``; column 0 (padding) is ``-inf``."""
        scores = self.last_hidden(item_ids) @ self.item_table.all().T
        scores[:, PADDING_ID] = -math.inf
        return scores

    def window_length(self) -> int | None:
        """How many of a history's most recent items :meth:`windows` keeps (None: all)."""
        limits = [n for n in (self.history_length, self.encoder.max_length) if n is not None]
        return min(limits) if limits else None

    def windows(self, histories: Sequence[Sequence[int]]) -> torch.Tensor:
        """Histories of item IDs (``1..I``, oldest first) as right-aligned inputs ``(B, N)``.

        ``N`` is the longest history, cut to :meth:`window_length` (the most recent items are
        kept, as in training).

        Raises:
            ValueError: an empty history, or an ID outside ``1..I`` anywhere in a history (its
                position named).
        """
        for row, history in enumerate(histories):
            if len(history) == 0:
                raise ValueError(f"history {row} is empty: a next item needs at least one item")
            for position, item in enumerate(history):
                if not 1 <= int(item) <= self.n_items:
                    raise ValueError(
                        f"history {row}, position {position}: item ID {item} is outside "
                        f"1..{self.n_items}"
                    )
        limit = self.window_length()
        kept = [list(h)[-limit:] if limit is not None else list(h) for h in histories]
        width = max(len(h) for h in kept)
        windows = torch.full((len(kept), width), PADDING_ID, dtype=torch.int64)
        for row, history in enumerate(kept):
            windows[row, width - len(history) :] = torch.as_tensor(history, dtype=torch.int64)
        return windows

    @torch.no_grad()
    def recommend(
        self,
        histories: Sequence[Sequence[int]],
        k: int = 10,
        exclude_seen: bool | Sequence[bool] = True,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Top-``k`` next items after each history (item IDs ``1..I``, oldest first).

        Args:
            histories: one list of item IDs per request (see :meth:`windows`).
            k: list length, at most ``I``.
            exclude_seen: leave out the items of each history (its whole history, also the
                part before :meth:`window_length`'s window); one flag per history, or one for
                all.

        Returns:
            ``(items, scores)``, both ``(B, k)``: item IDs best first; where fewer than ``k``
            items are left, the tail's items are :data:`~leanrec.models.requests.NO_ITEM`
            (-1) and its scores ``-inf``. No history: ``(0, k)``.

        Raises:
            TypeError: a flat list of IDs (one history is ``[[1, 2, 3]]``), an ID or ``k``
                that is not an integer.
            ValueError: an empty history, an ID outside ``1..I``, ``k`` outside ``[1, I]``.
        """
        histories = check_histories(histories)
        k = check_list_length(k, self.n_items)
        if len(histories) == 0:
            return torch.zeros(0, k, dtype=torch.int64), torch.zeros(0, k)
        was_training = self.training
        self.eval()
        scores = self.score_all(self.windows(histories))
        flags = [exclude_seen] * len(histories) if isinstance(exclude_seen, bool) else exclude_seen
        for row, (history, exclude) in enumerate(zip(histories, flags, strict=True)):
            if exclude:
                scores[row, torch.as_tensor(list(history), dtype=torch.int64)] = -math.inf
        top = torch.topk(scores, k, dim=1)
        self.train(was_training)
        return pad_past_unrankable(top.indices, top.values), top.values

    def num_parameters(self) -> dict[str, int]:
        """``{"embedding": table values, "encoder": encoder parameters}``."""
        return {
            "embedding": self.item_table.num_parameters(),
            "encoder": sum(p.numel() for p in self.encoder.parameters()),
        }
