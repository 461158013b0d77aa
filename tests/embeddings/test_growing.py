"""GrowingEmbedding: the table contract, exact byte counts along allocate/free/grow/compact, and
optimiser state that follows the rows."""

from __future__ import annotations

import pytest
import torch

from leanrec.embeddings import EmbeddingTable, GrowingEmbedding, OptimizerRowSync
from tests.embeddings.contract import EmbeddingTableContract


class TestGrowingEmbedding(EmbeddingTableContract):
    def make_table(self, num_embeddings: int, embedding_dim: int) -> EmbeddingTable:
        table = GrowingEmbedding(num_embeddings, embedding_dim, min_capacity=4, init_std=0.1)
        # every ID but the last gets a row; the last reads the fallback vector
        table.allocate(torch.arange(num_embeddings - 1))
        return table

    def row_gradients(
        self, table: EmbeddingTable, grads: dict[str, torch.Tensor | None], row: int
    ) -> list[torch.Tensor]:
        """ID ``row``'s gradient entries: its own row if it holds one, else the fallback."""
        assert isinstance(table, GrowingEmbedding)
        held = int(table.row_of_id[row])
        name, index = ("weight", held) if held >= 0 else ("fallback", 0)
        grad = grads.get(name)
        param = dict(table.named_parameters())[name]
        return [torch.zeros_like(param[index]) if grad is None else grad[index]]


def bytes_by_hand(d: int, capacity: int, id_capacity: int) -> int:
    # float32 rows + the fallback vector + int32 ID -> row map + int32 row -> ID map
    return 4 * d * capacity + 4 * d + 4 * id_capacity + 4 * capacity


def test_allocate_free_grow_compact_with_exact_bytes() -> None:
    table = GrowingEmbedding(10, 2, min_capacity=1)
    assert (table.capacity, table.nbytes()) == (0, 48)  # 0 + 8 + 40 + 0
    assert table.allocate(torch.tensor([5])).tolist() == [0]
    assert (table.capacity, table.nbytes()) == (1, 60)  # 8 + 8 + 40 + 4
    # two more rows: capacity 1 -> 2 -> 4
    assert table.allocate(torch.tensor([2, 7])).tolist() == [1, 2]
    assert (table.capacity, table.nbytes()) == (4, 96)  # 32 + 8 + 40 + 16
    assert table.allocate(torch.tensor([9])).tolist() == [3]
    table.free(torch.tensor([2]))  # 3 used of 4: no compaction, row 1 is free
    assert (table.capacity, table.used_rows, table.nbytes()) == (4, 3, 96)
    assert table.allocate(torch.tensor([0])).tolist() == [1]  # the lowest free row is reused
    vector_of_7 = table.lookup(torch.tensor([7])).detach().clone()
    table.free(torch.tensor([5, 0, 9]))  # 1 used of 4 < half: compact to next_pow2(1) = 1
    assert (table.capacity, table.used_rows, table.nbytes()) == (1, 1, 60)
    assert table.rows(torch.tensor([7, 5, 0, 9, 2])).tolist() == [0, -1, -1, -1, -1]
    assert torch.equal(table.lookup(torch.tensor([7])), vector_of_7)
    assert table.num_parameters() == 2 * 2  # one used row + the fallback
    # the ID space doubles its map when it has to grow: 10 -> 20
    table.extend_ids(11)
    assert (table.num_embeddings, table.id_capacity) == (11, 20)
    assert table.nbytes() == bytes_by_hand(2, 1, 20) == 100


def test_lookups_survive_compaction_and_rowless_ids_read_the_fallback() -> None:
    generator = torch.Generator().manual_seed(3)
    table = GrowingEmbedding(100, 4, min_capacity=2, generator=generator)
    table.allocate(torch.arange(0, 100, 3))  # 34 rows -> capacity 64
    assert table.capacity == 64
    before = table.all().detach().clone()
    keep = torch.arange(0, 100, 3)[::4]  # 9 IDs keep their rows
    drop = torch.tensor([i for i in range(0, 100, 3) if i not in set(keep.tolist())])
    bytes_before = table.nbytes()
    table.free(drop[:10])  # 24 used of 64 < 32: compacts to 32
    assert table.capacity == 32
    table.free(drop[10:])  # 9 used of 32 < 16: compacts to 16
    assert (table.capacity, table.used_rows) == (16, 9)
    assert table.nbytes() == bytes_by_hand(4, 16, 100) < bytes_before == bytes_by_hand(4, 64, 100)
    after = table.all()
    assert torch.equal(after[keep], before[keep])
    # used rows were moved down in order: row j holds the j-th kept ID
    assert table.rows(keep).tolist() == list(range(9))
    rowless = torch.tensor([1, int(drop[0])])
    assert torch.equal(after[rowless], table.fallback.expand(2, -1))


def test_gradients_reach_own_rows_and_the_fallback() -> None:
    table = GrowingEmbedding(6, 3, min_capacity=4)
    table.allocate(torch.tensor([1, 4]))
    table.lookup(torch.tensor([4, 0, 0])).sum().backward()
    assert table.weight.grad is not None and table.fallback.grad is not None
    assert table.weight.grad[1].tolist() == [1.0, 1.0, 1.0]  # ID 4 is in row 1
    assert table.weight.grad[0].abs().sum() == 0  # ID 1 was not looked up
    assert table.fallback.grad[0].tolist() == [2.0, 2.0, 2.0]  # ID 0 twice, no row


def test_init_from_given_vectors_and_errors() -> None:
    table = GrowingEmbedding(5, 2, min_capacity=2)
    table.allocate(torch.tensor([3]), init=torch.tensor([[0.5, -1.0]]))
    assert table.lookup(torch.tensor([3])).tolist() == [[0.5, -1.0]]
    with pytest.raises(ValueError, match="already hold"):
        table.allocate(torch.tensor([3]))
    with pytest.raises(ValueError, match="distinct"):
        table.allocate(torch.tensor([1, 1]))
    with pytest.raises(ValueError, match="hold no row"):
        table.free(torch.tensor([2]))
    with pytest.raises(IndexError, match="out of range"):
        table.allocate(torch.tensor([5]))


def test_state_dict_loads_into_a_table_of_another_capacity() -> None:
    table = GrowingEmbedding(40, 3, min_capacity=2)
    table.allocate(torch.arange(0, 40, 2))
    table.free(torch.arange(0, 40, 4))
    fresh = GrowingEmbedding(1, 3)
    fresh.load_state_dict(table.state_dict())
    assert (fresh.num_embeddings, fresh.used_rows, fresh.capacity) == (40, 10, table.capacity)
    assert torch.equal(fresh.all(), table.all())
    assert fresh.nbytes() == table.nbytes()


def _train(table: GrowingEmbedding, steps: list[tuple[str, list[int]]]) -> torch.Tensor:
    """Run allocate/free/train steps with Adam whose state follows the rows."""
    optimizer = torch.optim.Adam(table.parameters(), lr=0.05)
    OptimizerRowSync(optimizer, table)
    target = torch.linspace(-1, 1, table.embedding_dim)
    for action, ids in steps:
        id_tensor = torch.tensor(ids)
        if action == "allocate":
            table.allocate(id_tensor)
        elif action == "free":
            table.free(id_tensor)
        else:
            optimizer.zero_grad()
            ((table.lookup(id_tensor) - target) ** 2).sum().backward()
            optimizer.step()
    return table.all().detach()


def test_optimizer_state_follows_rows_through_grow_and_compact() -> None:
    steps = [
        ("allocate", [0, 1, 2]),
        ("train", [0, 1, 2, 5]),
        ("allocate", [3, 4, 5, 6, 7]),  # grows
        ("train", [0, 3, 5, 7]),
        ("free", [1, 2, 3, 4, 6]),  # 3 of 8 used: compacts in the default table
        ("train", [0, 5, 7, 9]),
        ("allocate", [9]),
        ("train", [0, 5, 9]),
    ]
    # same seeds, one table that never compacts (compact_below=0) and one that does
    keep_layout = GrowingEmbedding(10, 4, min_capacity=2, compact_below=0.0)
    keep_layout.generator = torch.Generator().manual_seed(1)
    compacting = GrowingEmbedding(10, 4, min_capacity=2)
    compacting.generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        compacting.fallback.copy_(keep_layout.fallback)
    expected = _train(keep_layout, steps)
    result = _train(compacting, steps)
    assert keep_layout.capacity == 8 and compacting.capacity == 4  # they differ in layout...
    assert torch.equal(result, expected)  # ...not in what they learnt (bit for bit)


def test_reused_rows_start_with_fresh_optimizer_state() -> None:
    table = GrowingEmbedding(4, 2, min_capacity=4, compact_below=0.0)
    optimizer = torch.optim.Adam(table.parameters(), lr=0.1)
    OptimizerRowSync(optimizer, table)
    table.allocate(torch.tensor([0, 1]))
    table.lookup(torch.tensor([0, 1])).sum().backward()
    optimizer.step()
    state = optimizer.state[table.weight]
    assert state["exp_avg"][0].abs().sum() > 0
    table.free(torch.tensor([0]))
    table.allocate(torch.tensor([3]))  # takes row 0 back
    assert table.rows(torch.tensor([3])).tolist() == [0]
    assert state["exp_avg"][0].abs().sum() == 0 and state["exp_avg_sq"][0].abs().sum() == 0
    assert state["exp_avg"][1].abs().sum() > 0  # ID 1's state is untouched
