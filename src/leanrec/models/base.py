"""The base recommender contract: score, train pairwise, recommend, save and load.

Every model asks :class:`~leanrec.embeddings.EmbeddingTable` objects for its ID vectors and never
knows how they are stored, so later capabilities can swap tables (masked, ragged, shared) in and
out with :meth:`Recommender.replace_table`.
"""

from __future__ import annotations

import dataclasses
from abc import abstractmethod
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from leanrec.data.interactions import Interactions
from leanrec.embeddings.base import EmbeddingTable, TableFactory
from leanrec.embeddings.full import FullTableFactory
from leanrec.model_files import torch_file_path
from leanrec.models.requests import check_list_length, integer_ids, pad_past_unrankable
from leanrec.models.tables import TableOwner

CHECKPOINT_FORMAT = "leanrec.model/1"


class PairwiseOutput(NamedTuple):
    """What a model returns for a BPR batch.

    Attributes:
        positive_scores: ``(B,)`` scores of the observed items.
        negative_scores: ``(B,)`` or ``(B, n_neg)`` scores of sampled items.
        l2: scalar, squared L2 norm of the batch's input embeddings / 2 / B (LightGCN Eq. 15).
    """

    positive_scores: torch.Tensor
    negative_scores: torch.Tensor
    l2: torch.Tensor


class Recommender(nn.Module, TableOwner):
    """Base class of every ranking model.

    Subclasses set ``name`` and ``config_class`` and implement :meth:`score_all` and
    :meth:`pairwise`. The training interactions a model was fitted on are attached with
    :meth:`attach` (graph models build their adjacency from them; :meth:`recommend` excludes them).

    Args:
        n_users: number of users ``U``.
        n_items: number of items ``I``.
        config: the model's config dataclass instance.
        table_factory: builds its embedding tables; the plain full table by default.
    """

    name: ClassVar[str] = "recommender"
    config_class: ClassVar[type[Any]]

    def __init__(
        self,
        n_users: int,
        n_items: int,
        config: Any,
        table_factory: TableFactory | None = None,
    ) -> None:
        super().__init__()
        self.n_users = n_users
        self.n_items = n_items
        self.config = config
        self.table_factory: TableFactory = table_factory or FullTableFactory()
        self.register_buffer("seen_indptr", torch.zeros(n_users + 1, dtype=torch.int64))
        self.register_buffer("seen_indices", torch.zeros(0, dtype=torch.int64))
        self._cache: Any = None

    # ------------------------------------------------------------------ contract
    @abstractmethod
    def score_all(self, users: torch.Tensor) -> torch.Tensor:
        """Scores of every item for ``users`` (B,) -> ``(B, n_items)``."""

    @abstractmethod
    def pairwise(
        self, users: torch.Tensor, positives: torch.Tensor, negatives: torch.Tensor
    ) -> PairwiseOutput:
        """Scores for a BPR batch: ``users``, ``positives`` ``(B,)``, ``negatives`` ``(B,)``."""

    def attach(self, train: Interactions) -> None:
        """Remember the training interactions (seen items; graph models build their graph)."""
        if train.n_users != self.n_users or train.n_items != self.n_items:
            raise ValueError(
                f"training data has {train.n_users} users x {train.n_items} items, "
                f"model was built for {self.n_users} x {self.n_items}"
            )
        indptr, indices = train.user_items()
        self.seen_indptr = torch.from_numpy(indptr)
        self.seen_indices = torch.from_numpy(indices)
        self.invalidate_cache()

    def seen_matrix(self) -> sp.csr_matrix:
        """The attached training interactions as a ``(U, I)`` CSR matrix of ones."""
        indptr = self.seen_indptr.cpu().numpy()
        indices = self.seen_indices.cpu().numpy()
        data = np.ones(len(indices), dtype=np.float32)
        return sp.csr_matrix((data, indices, indptr), shape=(self.n_users, self.n_items))

    # ------------------------------------------------------------------ tables
    def embedding_tables(self) -> dict[str, EmbeddingTable]:
        """Every ID table of the model by attribute name (e.g. NeuMF has four)."""
        return {
            name: module
            for name, module in self.named_children()
            if isinstance(module, EmbeddingTable)
        }

    def table_roles(self) -> dict[str, str]:
        """``"user"`` or ``"item"`` for every ID table, by its name (``gmf_user`` -> user).

        Per-entity policies (an embedding size per user and per item) apply one decision to
        every table of that entity's role.
        """
        roles = {}
        for name in self.embedding_tables():
            if "user" in name:
                roles[name] = "user"
            elif "item" in name:
                roles[name] = "item"
            else:
                raise ValueError(f"{self.name}: cannot tell whether table {name!r} is user or item")
        return roles

    def _set_table(self, name: str, table: EmbeddingTable) -> None:
        setattr(self, name, table)
        self.invalidate_cache()

    # ------------------------------------------------------------------ caching
    def invalidate_cache(self) -> None:
        self._cache = None

    def train(self, mode: bool = True) -> Recommender:
        self.invalidate_cache()
        return super().train(mode)

    # ------------------------------------------------------------------ serving
    @torch.no_grad()
    def recommend(
        self, users: torch.Tensor | np.ndarray | list[int], k: int = 10, exclude_seen: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Top-``k`` item indices and scores for each user, training items excluded.

        Args:
            users: user indices (integers in ``[0, U)``; raw IDs go through the vocabulary).
            k: list length, in ``[1, I]``.
            exclude_seen: leave out each user's training items.

        Returns:
            ``(items, scores)``, both of shape ``(B, k)``; items are int64 indices. A user with
            fewer than ``k`` items left has a shorter list: the positions past it hold item
            :data:`~leanrec.models.requests.NO_ITEM` (-1) and score ``-inf``.

        Raises:
            TypeError: a user index or ``k`` that is not an integer (``1.7`` is not user 1).
            IndexError: a user index out of range (the first one named).
            ValueError: ``k`` outside ``[1, I]``.
        """
        index = integer_ids(users, "user indices")
        k = check_list_length(k, self.n_items)
        outside = (index < 0) | (index >= self.n_users)
        if outside.any():
            raise IndexError(
                f"user index {int(index[outside][0])} out of range: the model has users "
                f"0..{self.n_users - 1}"
            )
        was_training = self.training
        self.eval()
        user_ids = torch.from_numpy(index)
        scores = self.score_all(user_ids).float()
        if exclude_seen:
            starts = self.seen_indptr[user_ids]
            counts = self.seen_indptr[user_ids + 1] - starts
            rows = torch.repeat_interleave(torch.arange(len(user_ids)), counts)
            offsets = torch.arange(int(counts.sum())) - torch.repeat_interleave(
                torch.cumsum(counts, 0) - counts, counts
            )
            cols = self.seen_indices[torch.repeat_interleave(starts, counts) + offsets]
            scores[rows, cols] = -torch.inf
        top = torch.topk(scores, k, dim=1)
        self.train(was_training)
        return pad_past_unrankable(top.indices, top.values), top.values

    # ------------------------------------------------------------------ persistence
    def checkpoint(self) -> dict[str, Any]:
        """A dict of tensors and plain values, loadable with ``torch.load(weights_only=True)``."""
        return {
            "format": CHECKPOINT_FORMAT,
            "model": self.name,
            "n_users": self.n_users,
            "n_items": self.n_items,
            "config": dataclasses.asdict(self.config),
            "tables": {name: table.spec() for name, table in self.embedding_tables().items()},
            "state_dict": {k: v.detach().cpu() for k, v in self.state_dict().items()},
        }

    def save(self, path: str | Path) -> Path:
        """Write :meth:`checkpoint` to ``path`` (a ``.pt`` file; read it back with
        :func:`leanrec.models.load_model`)."""
        path = torch_file_path(path)
        torch.save(self.checkpoint(), path)
        return path

    def after_load(self) -> None:
        """Hook run after weights and seen items are restored (graph models rebuild here)."""
        self.invalidate_cache()


class DotProductRecommender(Recommender):
    """A model whose score is ``<e_u, e_i>`` over final user/item representations.

    Holds one user table ``user_embedding (U, d)`` and one item table ``item_embedding (I, d)``
    with ``d = config.embedding_dim``. Subclasses implement :meth:`final_embeddings`; scoring and
    the BPR batch follow. In eval mode the final embeddings are computed once and cached (graph
    models propagate once per evaluation, not per user batch).
    """

    def __init__(
        self,
        n_users: int,
        n_items: int,
        config: Any,
        table_factory: TableFactory | None = None,
    ) -> None:
        super().__init__(n_users, n_items, config, table_factory)
        dim = config.embedding_dim
        self.user_embedding = self.table_factory("user_embedding", n_users, dim)
        self.item_embedding = self.table_factory("item_embedding", n_items, dim)

    def id_tables(self) -> tuple[EmbeddingTable, EmbeddingTable]:
        """The model's (user, item) input tables."""
        return self.user_embedding, self.item_embedding

    @abstractmethod
    def final_embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(users (U, d'), items (I, d'))`` used for scoring."""

    def scores_from_packed_tables(self) -> bool:
        """True when :meth:`score_all` scores from packed tables outside training, with no
        cache of final embeddings (MF with packed tables); graph models propagate, so their
        final embeddings are dense whatever the tables."""
        return False

    def cached_final_embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.training:
            return self.final_embeddings()
        if self._cache is None:
            with torch.no_grad():
                self._cache = self.final_embeddings()
        return self._cache  # type: ignore[no-any-return]

    def score_all(self, users: torch.Tensor) -> torch.Tensor:
        user_final, item_final = self.cached_final_embeddings()
        return user_final[users] @ item_final.T

    def pairwise(
        self, users: torch.Tensor, positives: torch.Tensor, negatives: torch.Tensor
    ) -> PairwiseOutput:
        user_final, item_final = self.final_embeddings()
        u = user_final[users]
        pos = (u * item_final[positives]).sum(-1)
        if negatives.dim() == 1:
            neg = (u * item_final[negatives]).sum(-1)
        else:
            neg = torch.einsum("bd,bnd->bn", u, item_final[negatives])
        return PairwiseOutput(pos, neg, self.batch_l2(users, positives, negatives))

    def batch_l2(
        self, users: torch.Tensor, positives: torch.Tensor, negatives: torch.Tensor
    ) -> torch.Tensor:
        """``(|e_u|^2 + |e_i|^2 + |e_j|^2) / 2 / B`` over the input (layer-0) embeddings."""
        user_table, item_table = self.id_tables()
        u0 = user_table.lookup(users)
        p0 = item_table.lookup(positives)
        n0 = item_table.lookup(negatives.reshape(-1))
        total = u0.pow(2).sum() + p0.pow(2).sum() + n0.pow(2).sum()
        return total / 2 / max(1, len(users))
