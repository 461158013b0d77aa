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

    def row_gradients(
        self, table: EmbeddingTable, grads: dict[str, torch.Tensor | None], row: int
    ) -> list[torch.Tensor]:
        """The gradient entries stored for ID ``row`` (None gradients count as zeros).

        Default: the ``[row]`` slice of every parameter with one leading entry per ID; a table
        that stores its rows another way (packed, shared) overrides this.
        """
        params = dict(table.named_parameters())
        out = []
        for name, grad in grads.items():
            if params[name].shape[:1] == (self.num_embeddings,):
                out.append(torch.zeros_like(params[name][row]) if grad is None else grad[row])
        return out

    def test_gradients_reach_only_looked_up_rows(self, table: EmbeddingTable) -> None:
        trainable = {n: p for n, p in table.named_parameters() if p.requires_grad}
        if not trainable:
            pytest.skip("table is frozen (serving-only)")
        table.lookup(torch.tensor([2, 3])).sum().backward()
        grads = {name: p.grad for name, p in trainable.items()}
        looked_up = [g for row in (2, 3) for g in self.row_gradients(table, grads, row)]
        assert looked_up and any(bool(g.abs().sum() > 0) for g in looked_up)
        # the rows of IDs not looked up get a gradient of exactly zero (or none at all)
        for row in (0, 7, self.num_embeddings - 1):
            entries = self.row_gradients(table, grads, row)
            assert entries, f"no stored entries found for row {row}: override row_gradients"
            leaked = sum(int(torch.count_nonzero(g)) for g in entries)
            assert leaked == 0, f"row {row} (not looked up) got {leaked} nonzero gradients"
