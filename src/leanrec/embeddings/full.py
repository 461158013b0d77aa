"""The plain full table: every ID stores ``embedding_dim`` float32 values."""

from __future__ import annotations

import torch
from torch import nn

from leanrec.embeddings.base import EmbeddingTable


class FullEmbedding(EmbeddingTable):
    """Dense ``(N, d)`` table, the uncompressed reference every other table is measured against.

    Args:
        num_embeddings: number of IDs ``N``.
        embedding_dim: vector width ``d``.
        init_std: standard deviation of the normal initialisation (LightGCN uses 0.1);
            ``None`` for Xavier-uniform.

    Example:
        >>> table = FullEmbedding(10, 4)
        >>> table.lookup(torch.tensor([0, 3])).shape
        torch.Size([2, 4])
        >>> table.num_parameters(), table.nbytes()
        (40, 160)
    """

    kind = "full"

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        init_std: float | None = 0.1,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        if num_embeddings <= 0 or embedding_dim <= 0:
            raise ValueError("a table needs num_embeddings > 0 and embedding_dim > 0")
        self.num_embeddings = num_embeddings
        self.embedding_dim = embedding_dim
        self.weight = nn.Parameter(torch.empty(num_embeddings, embedding_dim))
        with torch.no_grad():
            if init_std is None:
                bound = (6.0 / (num_embeddings + embedding_dim)) ** 0.5
                self.weight.uniform_(-bound, bound, generator=generator)
            else:
                self.weight.normal_(0.0, init_std, generator=generator)

    @classmethod
    def from_tensor(cls, weight: torch.Tensor) -> FullEmbedding:
        """A table holding a copy of ``weight`` of shape ``(N, d)``."""
        table = cls(weight.shape[0], weight.shape[1])
        with torch.no_grad():
            table.weight.copy_(weight)
        return table

    def lookup(self, ids: torch.Tensor) -> torch.Tensor:
        self._check_ids(ids)
        return self._gather(self.weight, ids)

    def row_parameters(self) -> list[nn.Parameter]:
        return [self.weight]

    def all(self) -> torch.Tensor:
        return self._stored(self.weight)

    def num_parameters(self) -> int:
        return self.weight.numel()


def full_table_factory(init_std: float | None = 0.1) -> FullTableFactory:
    """Factory building :class:`FullEmbedding` tables (the default for every model)."""
    return FullTableFactory(init_std)


class FullTableFactory:
    """Callable ``(name, N, d) -> FullEmbedding``; picklable, unlike a lambda."""

    def __init__(self, init_std: float | None = 0.1) -> None:
        self.init_std = init_std

    def __call__(self, name: str, num_embeddings: int, embedding_dim: int) -> EmbeddingTable:
        return FullEmbedding(num_embeddings, embedding_dim, init_std=self.init_std)
