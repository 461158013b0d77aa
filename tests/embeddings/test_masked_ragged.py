from __future__ import annotations

import numpy as np
import pytest
import torch

from leanrec.embeddings import (
    ElementMaskedEmbedding,
    EmbeddingTable,
    MaskedEmbedding,
    RaggedEmbedding,
    SoftThresholdEmbedding,
    SpecTableFactory,
    prefix_mask,
)
from tests.embeddings.contract import EmbeddingTableContract


def pattern_sizes(n: int, d: int) -> torch.Tensor:
    """Deterministic sizes covering 0, 1 and d_max."""
    return torch.tensor([(3 * i + 1) % (d + 1) for i in range(n)])


class TestMaskedEmbedding(EmbeddingTableContract):
    def make_table(self, num_embeddings: int, embedding_dim: int) -> EmbeddingTable:
        return MaskedEmbedding(num_embeddings, embedding_dim, sizes=pattern_sizes(17, 8))


class TestRaggedEmbedding(EmbeddingTableContract):
    def make_table(self, num_embeddings: int, embedding_dim: int) -> EmbeddingTable:
        return RaggedEmbedding(pattern_sizes(num_embeddings, embedding_dim), embedding_dim)

    def row_gradients(
        self, table: EmbeddingTable, grads: dict[str, torch.Tensor | None], row: int
    ) -> list[torch.Tensor]:
        """Row ``row`` is the packed slice ``values[offsets[row]:offsets[row + 1]]``."""
        assert isinstance(table, RaggedEmbedding)
        start, end = int(table.offsets[row]), int(table.offsets[row + 1])
        grad = grads["values"]
        return [table.values.new_zeros(end - start) if grad is None else grad[start:end]]


def test_prefix_mask_by_hand() -> None:
    mask = prefix_mask(torch.tensor([0, 2, 4]), 4)
    assert mask.tolist() == [[0, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 1]]


def test_masked_lookup_zeroes_the_tail_and_counts_kept_values() -> None:
    weight = torch.arange(12, dtype=torch.float32).reshape(3, 4) + 1
    table = MaskedEmbedding.from_tensor(weight, sizes=[4, 1, 2])
    assert table.lookup(torch.tensor([1, 2])).tolist() == [[5, 0, 0, 0], [9, 10, 0, 0]]
    assert table.num_parameters() == 7
    # a masked table still holds the dense weights: no memory is saved
    assert table.nbytes() == 12 * 4 + 3 * 8


def test_masked_gradient_never_reaches_masked_values() -> None:
    table = MaskedEmbedding(5, 6, sizes=[1, 2, 3, 6, 0])
    table.all().pow(2).sum().backward()
    grad = table.weight.grad
    assert grad is not None
    assert torch.equal(grad != 0, prefix_mask(table.sizes, 6).bool())


def test_all_follows_every_change_of_the_sizes() -> None:
    """all() keeps its mask between calls: set_sizes, load_state_dict and an in-place write to
    the buffer each show at the next call."""
    weight = torch.arange(12, dtype=torch.float32).reshape(3, 4) + 1
    table = MaskedEmbedding.from_tensor(weight, sizes=[4, 1, 2])
    assert table.all().tolist() == [[1, 2, 3, 4], [5, 0, 0, 0], [9, 10, 0, 0]]
    table.set_sizes([0, 4, 1])
    assert table.all().tolist() == [[0, 0, 0, 0], [5, 6, 7, 8], [9, 0, 0, 0]]
    state = {"weight": weight, "sizes": torch.tensor([2, 2, 3])}
    table.load_state_dict(state)
    assert table.all().tolist() == [[1, 2, 0, 0], [5, 6, 0, 0], [9, 10, 11, 0]]
    table.sizes[0] = 3
    assert table.all()[0].tolist() == [1, 2, 3, 0]
    table.sizes = torch.tensor([1, 1, 1])
    assert table.all()[:, 1].tolist() == [0, 0, 0]
    assert table.num_parameters() == 3


def test_set_sizes_rejects_out_of_range() -> None:
    table = MaskedEmbedding(3, 4)
    with pytest.raises(ValueError, match=r"\[0, 4\]"):
        table.set_sizes([1, 5, 2])
    with pytest.raises(ValueError, match="need 3 sizes"):
        table.set_sizes([1, 2])


def test_prefix_dropout_only_in_training_and_never_above_size() -> None:
    torch.manual_seed(0)
    table = MaskedEmbedding(200, 16, sizes=torch.full((200,), 8), prefix_dropout=True)
    table.train()
    kept = (table.all() != 0).sum(1)
    assert int(kept.max()) <= 8 and int(kept.min()) >= 1
    assert len(set(kept.tolist())) > 3  # prefixes really vary
    table.eval()
    assert ((table.all() != 0).sum(1) == 8).all()


def test_ragged_packs_exactly_sum_of_sizes() -> None:
    torch.manual_seed(1)
    masked = MaskedEmbedding(50, 32, sizes=torch.randint(0, 33, (50,)))
    ragged = RaggedEmbedding.from_masked(masked)
    ids = torch.arange(50)
    assert torch.equal(ragged.lookup(ids), masked.lookup(ids))
    total = int(masked.sizes.sum())
    assert ragged.num_parameters() == total
    assert ragged.offsets.dtype == torch.int32
    assert ragged.nbytes() == total * 4 + 51 * 4
    assert torch.equal(ragged.sizes, masked.sizes)


def test_ragged_row_layout_by_hand() -> None:
    weight = torch.arange(9, dtype=torch.float32).reshape(3, 3)
    ragged = RaggedEmbedding.from_dense(weight, [2, 0, 1])
    assert ragged.values.tolist() == [0, 1, 6]
    assert ragged.offsets.tolist() == [0, 2, 2, 3]
    assert ragged.lookup(torch.tensor([2, 1, 0])).tolist() == [[6, 0, 0], [0, 0, 0], [0, 1, 0]]


def test_ragged_gradient_counts_each_lookup_of_each_kept_value() -> None:
    weight = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    ragged = RaggedEmbedding.from_dense(weight, [2, 0, 4])
    # row 0 twice, row 2 once, the empty row 1 once: d(sum)/d(values) counts occurrences
    ragged.lookup(torch.tensor([0, 2, 1, 0])).sum().backward()
    assert ragged.values.grad is not None
    assert ragged.values.grad.tolist() == [2, 2, 1, 1, 1, 1]


def test_ragged_lookup_of_only_empty_rows_is_zero() -> None:
    ragged = RaggedEmbedding.from_dense(torch.ones(2, 3), [0, 3])
    assert torch.equal(ragged.lookup(torch.tensor([0, 0])), torch.zeros(2, 3))


def test_ragged_loads_into_a_placeholder_built_from_its_spec() -> None:
    ragged = RaggedEmbedding(pattern_sizes(17, 8), 8)
    rebuilt = SpecTableFactory({"t": ragged.spec()})("t", 17, 8)
    rebuilt.load_state_dict(ragged.state_dict())
    assert torch.equal(rebuilt.all(), ragged.all())


def test_ragged_inner_products_by_hand() -> None:
    # rows [1, 2], [], [3]: q = [1, 10, 100] scores 1 + 20 = 21, 0, 3
    ragged = RaggedEmbedding(np.array([2, 0, 1]), 3, values=torch.tensor([1.0, 2.0, 3.0]))
    scores = ragged.inner_products(torch.tensor([[1.0, 10.0, 100.0], [0.0, 1.0, 0.0]]))
    assert scores.tolist() == [[21.0, 0.0, 3.0], [2.0, 0.0, 0.0]]


@pytest.mark.parametrize("chunk", [1, 5, 64, 1 << 14])
@pytest.mark.parametrize("sizes", [[0, 8, 3, 0, 1, 8, 5, 2, 0, 7] * 4, [0, 8, 0, 8], [0, 0]])
def test_ragged_inner_products_equal_the_padded_product_in_any_chunks(
    chunk: int, sizes: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chunks of 1 value (one row each, widths past the chunk), of a few rows, and all at once;
    rows of size 0 and of ``d_max``, a narrowest kept row wider than the chunk after empty
    rows, and a table of empty rows only."""
    from leanrec.embeddings import ragged as ragged_module

    monkeypatch.setattr(ragged_module, "SCORE_CHUNK_VALUES", chunk)
    torch.manual_seed(2)
    table = RaggedEmbedding(np.array(sizes), 8)
    queries = torch.randn(6, 8)
    with torch.no_grad():
        expected = queries @ table.all().T
        assert torch.allclose(table.inner_products(queries), expected, atol=1e-6)
    with pytest.raises(ValueError, match="queries must be \\(B, 8\\)"):
        table.inner_products(torch.zeros(2, 7))


def test_ragged_values_must_match_sizes() -> None:
    with pytest.raises(ValueError, match="sum\\(sizes\\) = 3"):
        RaggedEmbedding(np.array([1, 2]), 4, values=torch.zeros(4))


class TestElementMaskedEmbedding(EmbeddingTableContract):
    def make_table(self, num_embeddings: int, embedding_dim: int) -> EmbeddingTable:
        weight = torch.randn(num_embeddings, embedding_dim)
        mask = (torch.arange(num_embeddings * embedding_dim) % 3 != 0).reshape(weight.shape)
        return ElementMaskedEmbedding(weight, mask)


class TestSoftThresholdEmbedding(EmbeddingTableContract):
    def make_table(self, num_embeddings: int, embedding_dim: int) -> EmbeddingTable:
        return SoftThresholdEmbedding(torch.randn(num_embeddings, embedding_dim), -1.0)


def test_soft_threshold_by_hand() -> None:
    table = SoftThresholdEmbedding(torch.tensor([[0.9, -0.2, 0.6, -0.7]]), threshold_init=0.0)
    # sigmoid(0) = 0.5: 0.9 -> 0.4, -0.2 -> 0, 0.6 -> 0.1, -0.7 -> -0.2
    assert table.all()[0].tolist() == pytest.approx([0.4, 0.0, 0.1, -0.2])
    assert table.num_parameters() == 3
    table.all().sum().backward()
    assert table.threshold.grad is not None and float(table.threshold.grad) < 0
