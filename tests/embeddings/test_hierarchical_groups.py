"""HierarchicalSharedEmbedding with level 1 keyed by groups: what a grouped ID reads, where its
row starts, the running group means, bytes by hand, groups held at level 1 only, and
save/load."""

from __future__ import annotations

import pytest
import torch

from leanrec.embeddings import ASCEND, EmbeddingTable, HierarchicalSharedEmbedding, table_from_spec
from tests.embeddings.contract import EmbeddingTableContract


class TestGroupedHierarchicalSharedEmbedding(EmbeddingTableContract):
    def make_table(self, num_embeddings: int, embedding_dim: int) -> EmbeddingTable:
        table = HierarchicalSharedEmbedding(
            num_embeddings, embedding_dim, levels=1, min_capacity=4, init_std=0.1, groups=3
        )
        ids = torch.arange(num_embeddings)
        table.observe(ids)
        table.set_groups(ids, ids % 4 - 1)  # groups -1, 0, 1, 2, -1, 0, ...
        # IDs 3, 4, 9 and 10 stay at level 1 (3 in group 2, 4 ungrouped, 9 in group 0, 10 in
        # group 1); every other ID gets a unique row
        positions = torch.full((num_embeddings,), 2)
        positions[torch.tensor([3, 4, 9, 10])] = 1
        table.set_positions(ids, positions)
        return table

    def row_gradients(
        self, table: EmbeddingTable, grads: dict[str, torch.Tensor | None], row: int
    ) -> list[torch.Tensor]:
        """ID ``row``'s entries: its unique row, else its group's vector, else level 1's."""
        assert isinstance(table, HierarchicalSharedEmbedding)
        held = int(table.unique.row_of_id[row])
        group = int(table.group_of(torch.tensor([row]))[0])
        if held >= 0:
            name, index = "unique.weight", held
        elif group >= 0:
            name, index = "group_vectors", group
        else:
            name, index = "shared", 0
        param = dict(table.named_parameters())[name]
        grad = grads.get(name)
        return [torch.zeros_like(param[index]) if grad is None else grad[index]]


def test_a_grouped_id_reads_its_group_and_its_row_starts_there() -> None:
    # d = 2, k = 1, G = 2, 4 IDs (id capacity 4): unique fallback 4*2 = 8, shared 4*2*1 = 8,
    # group vectors 4*2*2 = 16, per ID 4 (row) + 1 (position) + 4 (count) = 9 -> 36; no rows
    # and no groups yet: 68
    table = HierarchicalSharedEmbedding(4, 2, levels=1, min_capacity=1, groups=2)
    assert table.nbytes() == 68 and table.num_parameters() == (1 + 2) * 2
    assert table.group_of(torch.arange(4)).tolist() == [-1, -1, -1, -1]
    # repeats: the first counts; three groups held at 4 (int32 ID) + 2 (int16 group) each
    table.set_groups(torch.tensor([0, 1, 2, 0]), torch.tensor([1, 0, 1, 0]))
    assert table.group_of(torch.arange(4)).tolist() == [1, 0, 1, -1]
    assert table.nbytes() == 68 + 3 * 6
    with torch.no_grad():
        table.shared.copy_(torch.tensor([[9.0, 9.0]]))
        table.group_vectors.copy_(torch.tensor([[1.0, 2.0], [3.0, 4.0]]))
    # unseen (position 0) and at level 1 alike: the group's vector; ungrouped ID 3: level 1's
    table.observe(torch.tensor([0, 1]))
    read = table.lookup(torch.arange(4))
    assert read.tolist() == [[3.0, 4.0], [1.0, 2.0], [3.0, 4.0], [9.0, 9.0]]
    # ascending from level 1 = level k: the rows start at what the IDs read, and ID 0 no
    # longer reads level 1, so its group is dropped
    assert table.move(torch.tensor([0, 3]), torch.tensor([ASCEND, ASCEND])).tolist() == [2, 2]
    assert table.lookup(torch.tensor([0, 3])).tolist() == [[3.0, 4.0], [9.0, 9.0]]
    assert table.group_of(torch.arange(4)).tolist() == [-1, 0, 1, -1]
    assert table.nbytes() == 68 + 2 * 6 + (4 * 2 + 4) * 2  # two groups held, two rows: 104
    # a group given to an ID above level 1 is not kept
    table.set_groups(torch.tensor([0]), torch.tensor([0]))
    assert table.group_of(torch.tensor([0])).tolist() == [-1]
    # the row is its own now: the group vector moving does not move it
    with torch.no_grad():
        table.group_vectors[1] = torch.tensor([5.0, 5.0])
    assert table.lookup(torch.tensor([0, 2])).tolist() == [[3.0, 4.0], [5.0, 5.0]]


def test_blend_groups_moves_each_group_towards_its_members_mean() -> None:
    table = HierarchicalSharedEmbedding(5, 2, levels=1, min_capacity=1, groups=3)
    ids = torch.arange(5)
    table.observe(ids)
    table.set_positions(ids, torch.full((5,), 2))
    with torch.no_grad():
        rows = table.unique.rows(ids)
        table.unique.weight[rows] = torch.tensor(
            [[2.0, 0.0], [4.0, 2.0], [1.0, 1.0], [100.0, 100.0], [3.0, 3.0]]
        )
        table.group_vectors.zero_()
        table.group_vectors[2] = torch.tensor([7.0, 7.0])
    # group 0: mean of IDs 0 and 1 = (3, 1), half way from 0 -> (1.5, 0.5); group 1: ID 2 only
    # (4 is not passed), rate 1 -> (1, 1); group 2 has none of the IDs: unchanged; ID 3
    # (ungrouped) counts nowhere
    members = table.blend_groups(
        torch.tensor([0, 1, 2, 3]), torch.tensor([0, 0, 1, -1]), torch.tensor([0.5, 1.0, 1.0])
    )
    assert members.tolist() == [2, 1, 0]
    assert table.group_vectors.tolist() == [[1.5, 0.5], [1.0, 1.0], [7.0, 7.0]]
    # a float rate is every group's
    table.blend_groups(torch.tensor([4]), torch.tensor([1]), 0.25)
    assert table.group_vectors[1].tolist() == [1.5, 1.5]  # 0.75 * 1 + 0.25 * 3


def test_groups_survive_new_ids_and_save_and_load() -> None:
    table = HierarchicalSharedEmbedding(3, 2, levels=1, min_capacity=1, groups=4, park=True)
    table.set_groups(torch.tensor([0, 2]), torch.tensor([3, 1]))
    table.extend_ids(7)  # new IDs are ungrouped, old ones keep theirs
    assert table.group_of(torch.arange(7)).tolist() == [3, -1, 1, -1, -1, -1, -1]
    table.observe(torch.tensor([0, 5]))
    table.set_groups(torch.tensor([5, 1]), torch.tensor([2, -1]))  # -1: nothing held
    table.move(torch.tensor([0]), torch.tensor([ASCEND]))
    assert table.group_of(torch.arange(7)).tolist() == [-1, -1, 1, -1, -1, 2, -1]
    spec = table.spec()
    assert spec["groups"] == 4
    copy = table_from_spec(spec, 1, 2)
    assert isinstance(copy, HierarchicalSharedEmbedding)
    copy.load_state_dict(table.state_dict())
    copy.num_embeddings = table.num_embeddings
    assert copy.group_of(torch.arange(7)).tolist() == [-1, -1, 1, -1, -1, 2, -1]
    assert torch.equal(copy.lookup(torch.arange(7)), table.lookup(torch.arange(7)))
    assert copy.nbytes() == table.nbytes()
    # a table without groups writes no "groups" in its spec and has no group state
    plain = HierarchicalSharedEmbedding(3, 2, levels=1)
    assert "groups" not in plain.spec() and "grouped_ids" not in plain.state_dict()


def test_bad_groups_are_refused() -> None:
    table = HierarchicalSharedEmbedding(3, 2, levels=1, groups=2)
    with pytest.raises(ValueError, match=r"groups must be in -1\.\.1"):
        table.set_groups(torch.tensor([0]), torch.tensor([2]))
    with pytest.raises(ValueError, match="one group per ID"):
        table.set_groups(torch.tensor([0, 1]), torch.tensor([0]))
    with pytest.raises(ValueError, match="no groups"):
        HierarchicalSharedEmbedding(3, 2, levels=1).set_groups(torch.tensor([0]), torch.tensor([0]))
    with pytest.raises(ValueError, match=r"groups must be in 0\.\.32767"):
        HierarchicalSharedEmbedding(3, 2, levels=1, groups=-1)
