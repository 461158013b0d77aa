"""The ID-table side of every model family that lets a policy swap its tables.

A ranking model keeps its tables as attributes, a CTR model in its embedder; both find their
tables by name (:meth:`TableOwner.embedding_tables`), accept a replacement of the same shape
(:meth:`TableOwner.replace_table`, e.g. a masked or packed table from an embedding-size
policy) and report what the tables hold, so a policy treats every family the same way.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

from leanrec.embeddings.base import EmbeddingTable

__all__ = ["TableOwner"]


class TableOwner(ABC):
    """Mixin of a model with named :class:`~leanrec.embeddings.EmbeddingTable` s.

    Subclasses implement :meth:`embedding_tables` and :meth:`_set_table` (where the table
    lives); the checks, the swap and the counts follow.
    """

    name: ClassVar[str]

    @abstractmethod
    def embedding_tables(self) -> dict[str, EmbeddingTable]:
        """The model's ID tables by name."""

    @abstractmethod
    def _set_table(self, name: str, table: EmbeddingTable) -> None:
        """Put ``table`` where the table ``name`` is (it has been checked to fit)."""

    def replace_table(self, name: str, table: EmbeddingTable) -> None:
        """Swap the table ``name`` for ``table`` (same number of rows and output width)."""
        old = self.embedding_tables().get(name)
        if old is None:
            raise KeyError(
                f"{self.name} has no table {name!r}; known: {list(self.embedding_tables())}"
            )
        if (table.num_embeddings, table.embedding_dim) != (old.num_embeddings, old.embedding_dim):
            raise ValueError(
                f"table {name!r} must be {old.num_embeddings} x {old.embedding_dim}, got "
                f"{table.num_embeddings} x {table.embedding_dim}"
            )
        self._set_table(name, table)

    def embedding_parameters(self) -> int:
        """Logical parameters held by the ID tables."""
        return sum(t.num_parameters() for t in self.embedding_tables().values())

    def embedding_bytes(self) -> int:
        """Physical bytes held by the ID tables."""
        return sum(t.nbytes() for t in self.embedding_tables().values())
