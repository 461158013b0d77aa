"""Embedding tables behind one interface: :class:`EmbeddingTable`."""

from leanrec.embeddings.base import EmbeddingTable, TableFactory
from leanrec.embeddings.full import FullEmbedding, FullTableFactory, full_table_factory

__all__ = [
    "EmbeddingTable",
    "FullEmbedding",
    "FullTableFactory",
    "TableFactory",
    "full_table_factory",
]
