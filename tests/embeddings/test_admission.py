"""Frequency-threshold and LFU/LRU tables: the table contract, byte counts by hand, and eviction
checked against event-by-event reference caches."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from leanrec.embeddings import EmbeddingTable, EvictingEmbedding, ThresholdEmbedding
from tests.embeddings.contract import EmbeddingTableContract


def _own_row_or_fallback(
    table: EmbeddingTable,
    grads: dict[str, torch.Tensor | None],
    held: int,
    weight: str,
    fallback: str,
) -> list[torch.Tensor]:
    name, index = (weight, held) if held >= 0 else (fallback, 0)
    param = dict(table.named_parameters())[name]
    grad = grads.get(name)
    return [torch.zeros_like(param[index]) if grad is None else grad[index]]


class TestThresholdEmbedding(EmbeddingTableContract):
    def make_table(self, num_embeddings: int, embedding_dim: int) -> EmbeddingTable:
        table = ThresholdEmbedding(
            num_embeddings, embedding_dim, threshold=2, min_capacity=4, init_from_shared=False
        )
        # every ID twice but 9 and 16 once: they read the shared row
        twice = torch.tensor([i for i in range(num_embeddings) if i not in (9, 16)])
        table.observe(torch.cat([torch.arange(num_embeddings), twice]))
        return table

    def row_gradients(
        self, table: EmbeddingTable, grads: dict[str, torch.Tensor | None], row: int
    ) -> list[torch.Tensor]:
        assert isinstance(table, ThresholdEmbedding)
        held = int(table.unique.row_of_id[row])
        return _own_row_or_fallback(table, grads, held, "unique.weight", "unique.fallback")


class _EvictingContract(EmbeddingTableContract):
    policy = "lfu"

    def make_table(self, num_embeddings: int, embedding_dim: int) -> EmbeddingTable:
        table = EvictingEmbedding(
            num_embeddings, embedding_dim, capacity=16, policy=self.policy, init_from_shared=False
        )
        # 17 new IDs for 16 rows: ID 0 (least recent, and as frequent as the others) stays out
        table.observe(torch.arange(num_embeddings))
        return table

    def row_gradients(
        self, table: EmbeddingTable, grads: dict[str, torch.Tensor | None], row: int
    ) -> list[torch.Tensor]:
        assert isinstance(table, EvictingEmbedding)
        held = int(table.rows(torch.tensor([row]))[0])
        return _own_row_or_fallback(table, grads, held, "weight", "fallback")


class TestLFUEmbedding(_EvictingContract):
    policy = "lfu"


class TestLRUEmbedding(_EvictingContract):
    policy = "lru"


# --------------------------------------------------------------------------- threshold
def test_threshold_admission_and_bytes_by_hand() -> None:
    # d = 2, n = 2, 5 IDs: shared row 8 + per ID (row int32 4 + count 4) * 5 = 48
    table = ThresholdEmbedding(5, 2, threshold=2, min_capacity=1)
    assert table.nbytes() == 48
    table.observe(torch.tensor([0, 1, 0, 2, 2, 2]))  # counts 2, 1, 3, 0, 0
    assert table.has_row(torch.arange(5)).tolist() == [True, False, True, False, False]
    assert table.counts(torch.arange(5)).tolist() == [2, 1, 3, 0, 0]
    assert table.nbytes() == 48 + (4 * 2 + 4) * 2 == 72  # 2 rows (vector + int32 row -> ID)
    # new rows start as the shared row they read until now
    assert torch.equal(table.lookup(torch.tensor([0, 2, 3])), table.shared.expand(3, -1))
    table.observe(torch.tensor([1]))  # ID 1 reaches 2: a third row, capacity 2 -> 4
    assert (table.unique.capacity, table.nbytes()) == (4, 48 + 12 * 4)
    table.extend_ids(6)  # the ID map doubles to 10 entries: + 8 * 5
    assert table.nbytes() == 96 + 40
    assert table.num_parameters() == (3 + 1) * 2
    with pytest.raises(ValueError, match="threshold"):
        ThresholdEmbedding(5, 2, threshold=0)


def test_threshold_one_is_every_id_on_first_sight() -> None:
    table = ThresholdEmbedding(4, 2, threshold=1, init_from_shared=False)
    table.observe(torch.tensor([3, 1]))
    assert table.has_row(torch.arange(4)).tolist() == [False, True, False, True]
    assert not torch.equal(table.lookup(torch.tensor([1]))[0], table.shared[0])


# --------------------------------------------------------------------------- LFU / LRU
def test_lfu_by_hand_and_bytes() -> None:
    table = EvictingEmbedding(10, 4, capacity=2, policy="lfu")
    # d = 4, C = 2: rows 32 + fallback 16 + (row -> ID, sorted IDs, their rows: int32)
    # 3 * 4 * 2 = 24 + (last use, uses: int64) 2 * 8 * 2 = 32 -> 104, whatever the number of IDs
    assert table.nbytes() == 104
    table.observe(torch.tensor([1, 1, 1, 2]))  # uses: 1 -> 3, 2 -> 1
    table.observe(torch.tensor([3]))  # 3 evicts the least used, 2
    assert table.resident(torch.tensor([1, 2, 3])).tolist() == [True, False, True]
    # event by event: 4 evicts 3 (1 use), 4 again (2 uses), 5 evicts 4 (2 < 3 uses of 1)
    table.observe(torch.tensor([4, 4, 5]))
    assert table.resident(torch.tensor([1, 3, 4, 5])).tolist() == [True, False, False, True]
    assert torch.equal(table.lookup(torch.tensor([4]))[0], table.fallback[0])  # evicted
    table.extend_ids(10**6)
    assert table.nbytes() == 104 and table.num_parameters() == (2 + 1) * 4


def test_lru_bytes_and_state_round_trip() -> None:
    table = EvictingEmbedding(10, 4, capacity=3, policy="lru")
    assert table.nbytes() == 4 * 4 * 3 + 16 + 3 * 4 * 3 + 8 * 3  # no use counts
    table.observe(torch.tensor([5, 6, 7, 8, 6]))  # 4 new IDs, 3 rows: 5 (least recent) out
    assert table.resident(torch.tensor([5, 6, 7, 8])).tolist() == [False, True, True, True]
    other = EvictingEmbedding(10, 4, capacity=3, policy="lru")
    other.load_state_dict(table.state_dict())
    other.observe(torch.tensor([9]))  # the loaded clock: 7 (event 2) is the least recent
    assert other.resident(torch.tensor([6, 7, 8, 9])).tolist() == [True, False, True, True]


class ReferenceCache:
    """Event-by-event LFU or LRU: always admit, evict the fewest uses (ties: least recent) or
    the least recent; uses are counted since admission."""

    def __init__(self, capacity: int, policy: str) -> None:
        self.capacity = capacity
        self.policy = policy
        self.uses: dict[int, int] = {}
        self.last: dict[int, int] = {}
        self.clock = 0

    def event(self, item: int) -> None:
        if item not in self.uses and len(self.uses) == self.capacity:
            if self.policy == "lfu":
                victim = min(self.uses, key=lambda i: (self.uses[i], self.last[i]))
            else:
                victim = min(self.uses, key=lambda i: self.last[i])
            del self.uses[victim], self.last[victim]
        self.uses[item] = self.uses.get(item, 0) + 1
        self.last[item] = self.clock
        self.clock += 1


@settings(max_examples=40, deadline=None)
@given(
    capacity=st.integers(1, 8),
    events=st.lists(st.integers(0, 15), min_size=1, max_size=80),
    chunk=st.integers(1, 20),
)
def test_lru_chunks_match_event_by_event_lru(capacity: int, events: list[int], chunk: int) -> None:
    table = EvictingEmbedding(16, 2, capacity=capacity, policy="lru")
    reference = ReferenceCache(capacity, "lru")
    for start in range(0, len(events), chunk):
        part = events[start : start + chunk]
        table.observe(torch.tensor(part))
        for item in part:
            reference.event(item)
        resident = torch.nonzero(table.resident(torch.arange(16))).reshape(-1).tolist()
        assert resident == sorted(reference.uses)
        # the sorted ID -> row map, kept by merging, is the sort of the row -> ID map
        assert torch.equal(table.sorted_ids, torch.sort(table.id_of_row).values)
        assert torch.equal(table.id_of_row[table.row_of_sorted], table.sorted_ids)


@settings(max_examples=40, deadline=None)
@given(capacity=st.integers(1, 8), events=st.lists(st.integers(0, 15), min_size=1, max_size=80))
def test_lfu_one_event_per_chunk_matches_event_by_event_lfu(
    capacity: int, events: list[int]
) -> None:
    table = EvictingEmbedding(16, 2, capacity=capacity, policy="lfu")
    reference = ReferenceCache(capacity, "lfu")
    for item in events:
        table.observe(torch.tensor([item]))
        reference.event(item)
        resident = torch.nonzero(table.resident(torch.arange(16))).reshape(-1).tolist()
        assert resident == sorted(reference.uses)
        rows = table.rows(torch.tensor(sorted(reference.uses)))
        assert table.use_count[rows].tolist() == [reference.uses[i] for i in sorted(reference.uses)]


def test_eviction_resets_the_rows_optimizer_state() -> None:
    table = EvictingEmbedding(8, 2, capacity=2, policy="lru", init_from_shared=False)
    optimizer = torch.optim.Adam(table.parameters(), lr=0.1)
    table.row_sync(optimizer)
    table.observe(torch.tensor([0, 1]))
    table.lookup(torch.tensor([0, 1])).sum().backward()
    optimizer.step()
    state = optimizer.state[table.weight]
    row_of_0 = int(table.rows(torch.tensor([0]))[0])
    table.observe(torch.tensor([1, 5]))  # 5 evicts 0 and takes its row
    assert int(table.rows(torch.tensor([5]))[0]) == row_of_0
    assert state["exp_avg"][row_of_0].abs().sum() == 0
    assert state["exp_avg"][1 - row_of_0].abs().sum() > 0  # ID 1's state is untouched
