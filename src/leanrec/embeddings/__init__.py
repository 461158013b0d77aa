"""Embedding tables behind one interface: :class:`EmbeddingTable`.

- :class:`FullEmbedding`: dense ``(N, d)``, the uncompressed reference.
- :class:`MaskedEmbedding`: per-row sizes ``d_n`` by masking a dense table (training, search).
- :class:`RaggedEmbedding`: per-row sizes packed into ``sum(d_n)`` floats (real memory savings).
- :class:`SoftThresholdEmbedding` (PEP) and :class:`ElementMaskedEmbedding`: element pruning.
- :class:`GrowingEmbedding`: rows allocated and freed per ID along a stream (capacity doubles,
  compacts when half empty), with :class:`OptimizerRowSync` moving optimiser state with rows.
"""

from leanrec.embeddings.base import EmbeddingTable, TableFactory
from leanrec.embeddings.full import FullEmbedding, FullTableFactory, full_table_factory
from leanrec.embeddings.growing import GrowingEmbedding, OptimizerRowSync
from leanrec.embeddings.masked import MaskedEmbedding, prefix_mask
from leanrec.embeddings.pruned import ElementMaskedEmbedding, SoftThresholdEmbedding
from leanrec.embeddings.ragged import RaggedEmbedding
from leanrec.embeddings.specs import MaskedTableFactory, SpecTableFactory, table_from_spec

__all__ = [
    "ElementMaskedEmbedding",
    "EmbeddingTable",
    "FullEmbedding",
    "FullTableFactory",
    "GrowingEmbedding",
    "MaskedEmbedding",
    "MaskedTableFactory",
    "OptimizerRowSync",
    "RaggedEmbedding",
    "SoftThresholdEmbedding",
    "SpecTableFactory",
    "TableFactory",
    "full_table_factory",
    "prefix_mask",
    "table_from_spec",
]
