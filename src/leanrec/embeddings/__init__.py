"""Embedding tables behind one interface: :class:`EmbeddingTable`.

- :class:`FullEmbedding`: dense ``(N, d)``, the uncompressed reference.
- :class:`MaskedEmbedding`: per-row sizes ``d_n`` by masking a dense table (training, search).
- :class:`RaggedEmbedding`: per-row sizes packed into ``sum(d_n)`` floats (real memory savings).
- :class:`SoftThresholdEmbedding` (PEP) and :class:`ElementMaskedEmbedding`: element pruning.
- :class:`GrowingEmbedding`: rows allocated and freed per ID along a stream (capacity doubles,
  compacts when half empty), with :class:`OptimizerRowSync` moving optimiser state with rows.
- :class:`HierarchicalSharedEmbedding`: ``k`` shared levels in front of unique rows, per-ID
  positions moved by a policy (AutoAssign+), under an optional byte cap.
- :class:`ThresholdEmbedding`: own row after ``n`` occurrences, one shared row before.
- :class:`EvictingEmbedding`: ``C`` rows with LFU or LRU eviction and a shared fallback row.
- :class:`HashedEmbedding` (hashing trick) and :class:`QREmbedding` (quotient-remainder).

Tables that live along a stream implement :class:`StreamTable` (``extend_ids``, ``observe``,
``row_sync``).
"""

from leanrec.embeddings.admission import EvictingEmbedding, ThresholdEmbedding
from leanrec.embeddings.base import EmbeddingTable, StreamTable, TableFactory
from leanrec.embeddings.full import FullEmbedding, FullTableFactory, full_table_factory
from leanrec.embeddings.growing import GrowingEmbedding, OptimizerRowSync
from leanrec.embeddings.hashed import HashedEmbedding, QREmbedding
from leanrec.embeddings.hierarchical import (
    ASCEND,
    DESCEND,
    UNCHANGED,
    HierarchicalSharedEmbedding,
    threshold_positions,
)
from leanrec.embeddings.masked import MaskedEmbedding, prefix_mask
from leanrec.embeddings.pruned import ElementMaskedEmbedding, SoftThresholdEmbedding
from leanrec.embeddings.ragged import RaggedEmbedding
from leanrec.embeddings.specs import MaskedTableFactory, SpecTableFactory, table_from_spec

__all__ = [
    "ASCEND",
    "DESCEND",
    "UNCHANGED",
    "ElementMaskedEmbedding",
    "EmbeddingTable",
    "EvictingEmbedding",
    "FullEmbedding",
    "FullTableFactory",
    "GrowingEmbedding",
    "HashedEmbedding",
    "HierarchicalSharedEmbedding",
    "MaskedEmbedding",
    "MaskedTableFactory",
    "OptimizerRowSync",
    "QREmbedding",
    "RaggedEmbedding",
    "SoftThresholdEmbedding",
    "SpecTableFactory",
    "StreamTable",
    "TableFactory",
    "ThresholdEmbedding",
    "full_table_factory",
    "prefix_mask",
    "table_from_spec",
    "threshold_positions",
]
