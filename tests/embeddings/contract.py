"""Contract every :class:`~leanrec.embeddings.EmbeddingTable` must pass.

A new table subclasses :class:`EmbeddingTableContract` and implements ``make_table``:

    class TestMyTable(EmbeddingTableContract):
        def make_table(self, num_embeddings, embedding_dim):
            return MyTable(num_embeddings, embedding_dim)
"""

from __future__ import annotations

import pytest
import torch

from leanrec.embeddings import EmbeddingTable


class EmbeddingTableContract:
    num_embeddings = 17
    embedding_dim = 8

    def make_table(self, num_embeddings: int, embedding_dim: int) -> EmbeddingTable:
        raise NotImplementedError

    @pytest.fixture
    def table(self) -> EmbeddingTable:
        torch.manual_seed(0)
        return self.make_table(self.num_embeddings, self.embedding_dim)

    def test_lookup_shape_and_dtype(self, table: EmbeddingTable) -> None:
        out = table.lookup(torch.tensor([0, 5, 16, 5]))
        assert out.shape == (4, self.embedding_dim)
        assert out.dtype == torch.float32
        assert torch.equal(out[1], out[3])

    def test_all_equals_lookup_of_every_id(self, table: EmbeddingTable) -> None:
        every = table.lookup(torch.arange(self.num_embeddings))
        assert torch.equal(table.all(), every)
        assert table.all().shape == (self.num_embeddings, self.embedding_dim)

    def test_empty_lookup(self, table: EmbeddingTable) -> None:
        assert table.lookup(torch.zeros(0, dtype=torch.int64)).shape == (0, self.embedding_dim)

    @pytest.mark.parametrize("bad", [-1, 17, 1000])
    def test_out_of_range_raises(self, table: EmbeddingTable, bad: int) -> None:
        with pytest.raises(IndexError, match="out of range"):
            table.lookup(torch.tensor([0, bad]))

    def test_counts_are_consistent(self, table: EmbeddingTable) -> None:
        assert 0 < table.num_parameters() <= self.num_embeddings * self.embedding_dim
        # every stored value is at least a float32 of bytes
        assert table.nbytes() >= 4 * table.num_parameters()

    def test_state_dict_round_trip(self, table: EmbeddingTable) -> None:
        other = self.make_table(self.num_embeddings, self.embedding_dim)
        other.load_state_dict(table.state_dict())
        ids = torch.arange(self.num_embeddings)
        assert torch.equal(other.lookup(ids), table.lookup(ids))

    def test_gradients_reach_only_looked_up_rows(self, table: EmbeddingTable) -> None:
        trainable = [p for p in table.parameters() if p.requires_grad]
        if not trainable:
            pytest.skip("table is frozen (serving-only)")
        table.lookup(torch.tensor([2, 3])).sum().backward()
        grads = [p.grad for p in trainable if p.grad is not None]
        assert grads and any(g.abs().sum() > 0 for g in grads)
        # a row not looked up receives no gradient
        other = table.lookup(torch.tensor([7]))
        before = other.detach().clone()
        assert torch.equal(table.lookup(torch.tensor([7])).detach(), before)
