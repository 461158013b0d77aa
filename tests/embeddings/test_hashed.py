"""Hashing trick and QR embeddings: the table contract, the fixed hash, collisions, byte counts."""

from __future__ import annotations

import pytest
import torch

from leanrec.embeddings import EmbeddingTable, HashedEmbedding, QREmbedding
from leanrec.embeddings.hashed import HASH_PRIME, hash_coefficients, hash_ids
from tests.embeddings.contract import EmbeddingTableContract


class TestHashedEmbedding(EmbeddingTableContract):
    def make_table(self, num_embeddings: int, embedding_dim: int) -> EmbeddingTable:
        # seed 0 puts IDs 0, 7, 16 (buckets 10, 1, 8) apart from 2, 3 (buckets 2, 4), which the
        # contract's gradient test needs; colliding IDs share gradients by design
        return HashedEmbedding(num_embeddings, embedding_dim, num_buckets=11, seed=0)

    def row_gradients(
        self, table: EmbeddingTable, grads: dict[str, torch.Tensor | None], row: int
    ) -> list[torch.Tensor]:
        assert isinstance(table, HashedEmbedding)
        bucket = int(table.buckets(torch.tensor([row]))[0])
        grad = grads["weight"]
        return [torch.zeros_like(table.weight[bucket]) if grad is None else grad[bucket]]


class TestQREmbedding(EmbeddingTableContract):
    def make_table(self, num_embeddings: int, embedding_dim: int) -> EmbeddingTable:
        return QREmbedding(num_embeddings, embedding_dim, num_remainders=4, num_quotients=3)

    def test_gradients_reach_only_looked_up_rows(self, table: EmbeddingTable) -> None:
        """Every ID shares its remainder and quotient rows with others, so "an ID's own entries"
        do not exist; the invariant is that only the rows the looked-up IDs read get gradients.
        IDs 2 and 3 (m = 4, Q = 3) read remainder rows {2, 3} and quotient row {0}."""
        assert isinstance(table, QREmbedding)
        table.lookup(torch.tensor([2, 3])).sum().backward()
        assert table.remainder.grad is not None and table.quotient.grad is not None
        touched_remainders = torch.nonzero(table.remainder.grad.abs().sum(1)).reshape(-1)
        touched_quotients = torch.nonzero(table.quotient.grad.abs().sum(1)).reshape(-1)
        assert touched_remainders.tolist() == [2, 3]
        assert touched_quotients.tolist() == [0]


def test_the_hash_is_splitmix64_and_fixed() -> None:
    # SplitMix64 from state 0 outputs 0xE220A8397B1DCDAF, then 0x6E789E6AA1B965F4 (reference)
    a, b = hash_coefficients(0)
    assert a == 1 + 0xE220A8397B1DCDAF % (HASH_PRIME - 1) == 60845732
    assert b == 0x6E789E6AA1B965F4 % HASH_PRIME == 2125112010
    # bucket of ID 5 in 7 buckets, by hand with Python integers
    assert hash_ids(torch.tensor([5]), 7, seed=0).tolist() == [((a * 5 + b) % HASH_PRIME) % 7]
    # IDs above p wrap to ID mod p; no int64 overflow for the largest int32 IDs
    big = torch.tensor([HASH_PRIME + 5, 2**31 - 2])
    expected = [((a * 5 + b) % HASH_PRIME) % 7, ((a * (2**31 - 2) + b) % HASH_PRIME) % 7]
    assert hash_ids(big, 7, seed=0).tolist() == expected


def test_buckets_are_balanced_and_collisions_share() -> None:
    table = HashedEmbedding(100_000, 4, num_buckets=100, seed=3)
    per_bucket = torch.bincount(table.buckets(torch.arange(100_000)), minlength=100)
    assert int(per_bucket.min()) > 850 and int(per_bucket.max()) < 1150  # 1000 each on average
    buckets = table.buckets(torch.arange(200))
    first, second = (torch.nonzero(buckets == buckets[0]).reshape(-1)[:2]).tolist()
    vectors = table.lookup(torch.tensor([first, second]))
    assert torch.equal(vectors[0], vectors[1])
    # another seed, another hash
    other = HashedEmbedding(100_000, 4, num_buckets=100, seed=4)
    assert not torch.equal(other.buckets(torch.arange(200)), buckets)


def test_hashed_bytes_do_not_grow_with_the_ids() -> None:
    table = HashedEmbedding(10, 3, num_buckets=5)
    assert (table.nbytes(), table.num_parameters()) == (4 * 3 * 5, 15)
    table.observe(torch.tensor([1, 2, 9]))
    table.extend_ids(1_000_000)
    assert (table.num_embeddings, table.nbytes()) == (1_000_000, 60)
    assert table.lookup(torch.tensor([999_999])).shape == (1, 3)


def test_qr_parts_give_distinct_vectors_up_to_m_times_q() -> None:
    table = QREmbedding(20, 2, num_remainders=4, num_quotients=3)
    remainders, quotients = table.parts(torch.tensor([0, 5, 11, 12, 17]))
    assert remainders.tolist() == [0, 1, 3, 0, 1]
    assert quotients.tolist() == [0, 1, 2, 0, 1]  # 12 // 4 = 3 wraps to 0, 17 // 4 = 4 -> 1
    every = table.lookup(torch.arange(12))
    assert len(torch.unique(every, dim=0)) == 12  # 4 * 3 pairs, all different
    assert torch.equal(table.lookup(torch.tensor([12, 17])), table.lookup(torch.tensor([0, 5])))
    # product: remainder[1] * quotient[1]
    assert torch.equal(table.lookup(torch.tensor([5]))[0], table.remainder[1] * table.quotient[1])
    assert (table.nbytes(), table.num_parameters()) == (4 * 2 * (4 + 3), 2 * 7)


def test_qr_sum_and_initial_scale() -> None:
    generator = torch.Generator().manual_seed(0)
    added = QREmbedding(10_000, 8, 100, 100, combine="add", init_std=0.1, generator=generator)
    assert torch.equal(added.lookup(torch.tensor([101]))[0], added.remainder[1] + added.quotient[1])
    multiplied = QREmbedding(10_000, 8, 100, 100, init_std=0.1, generator=generator)
    for table in (added, multiplied):  # both start at the scale init_std, like the other tables
        assert abs(float(table.all().detach().std()) - 0.1) < 0.01
    with pytest.raises(ValueError, match="combine"):
        QREmbedding(10, 2, 2, 2, combine="max")  # type: ignore[arg-type]


def test_qr_for_slots_uses_two_square_root_tables() -> None:
    square = QREmbedding.for_slots(10, 2, slots=100)  # m = Q = 10
    assert (square.num_remainders, square.num_quotients) == (10, 10)
    table = QREmbedding.for_slots(10, 2, slots=10)  # m = 4, Q = ceil(10 / 4) = 3
    assert (table.num_remainders, table.num_quotients) == (4, 3)
    assert QREmbedding.for_slots(10, 2, slots=1).nbytes() == 4 * 2 * 2
