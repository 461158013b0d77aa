from __future__ import annotations

import torch

from leanrec.embeddings import EmbeddingTable, FullEmbedding
from tests.embeddings.contract import EmbeddingTableContract


class TestFullEmbedding(EmbeddingTableContract):
    def make_table(self, num_embeddings: int, embedding_dim: int) -> EmbeddingTable:
        return FullEmbedding(num_embeddings, embedding_dim)


def test_full_table_counts_every_value_as_float32() -> None:
    table = FullEmbedding(10, 4)
    assert table.num_parameters() == 40
    assert table.nbytes() == 160


def test_from_tensor_copies() -> None:
    weight = torch.arange(6, dtype=torch.float32).reshape(3, 2)
    table = FullEmbedding.from_tensor(weight)
    weight.zero_()
    assert table.lookup(torch.tensor([2])).tolist() == [[4.0, 5.0]]


def test_init_std_is_respected() -> None:
    table = FullEmbedding(20000, 8, init_std=0.1, generator=torch.Generator().manual_seed(0))
    assert abs(float(table.weight.detach().std()) - 0.1) < 0.005
