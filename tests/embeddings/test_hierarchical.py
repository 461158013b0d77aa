"""HierarchicalSharedEmbedding: the table contract, positions and moves, exact byte counts, and a
byte cap that random move sequences never exceed."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from leanrec.embeddings import (
    ASCEND,
    DESCEND,
    UNCHANGED,
    EmbeddingTable,
    HierarchicalSharedEmbedding,
    threshold_positions,
)
from tests.embeddings.contract import EmbeddingTableContract


class TestHierarchicalSharedEmbedding(EmbeddingTableContract):
    def make_table(self, num_embeddings: int, embedding_dim: int) -> EmbeddingTable:
        table = HierarchicalSharedEmbedding(
            num_embeddings, embedding_dim, levels=2, min_capacity=4, init_std=0.1
        )
        table.observe(torch.arange(num_embeddings))
        # IDs 3 and 9 stay at level 1, 16 goes to level 2, every other ID gets a unique row
        ids = torch.arange(num_embeddings)
        positions = torch.full((num_embeddings,), 3)
        positions[torch.tensor([3, 9])] = 1
        positions[16] = 2
        table.set_positions(ids, positions)
        return table

    def row_gradients(
        self, table: EmbeddingTable, grads: dict[str, torch.Tensor | None], row: int
    ) -> list[torch.Tensor]:
        """ID ``row``'s entries: its unique row if it holds one, else its level's vector."""
        assert isinstance(table, HierarchicalSharedEmbedding)
        held = int(table.unique.row_of_id[row])
        if held >= 0:
            name, index = "unique.weight", held
        else:
            name, index = "shared", int(table.position_of_id[row]) - 1
        param = dict(table.named_parameters())[name]
        grad = grads.get(name)
        return [torch.zeros_like(param[index]) if grad is None else grad[index]]


def test_moves_lookups_and_bytes_by_hand() -> None:
    # d = 2, k = 2, 6 IDs: unique fallback 4*2 = 8, shared 4*2*2 = 16,
    # per ID 4 (row, int32) + 1 (position) + 4 (count) = 9 -> 9*6 = 54; no rows yet: 78
    table = HierarchicalSharedEmbedding(6, 2, levels=2, min_capacity=1)
    assert table.nbytes() == 78 and table.num_parameters() == 2 * 2
    table.observe(torch.tensor([0, 1, 0, 2]))
    assert table.positions(torch.arange(6)).tolist() == [1, 1, 1, 0, 0, 0]
    assert table.counts(torch.arange(6)).tolist() == [2, 1, 1, 0, 0, 0]
    # ID 3 is unseen (position 0): it moves from level 1
    moved = table.move(torch.tensor([0, 1, 3]), torch.tensor([ASCEND, DESCEND, ASCEND]))
    assert moved.tolist() == [2, 1, 2]
    level_2 = table.shared[1].detach().clone()
    assert torch.equal(table.lookup(torch.tensor([0]))[0], level_2)
    assert torch.equal(table.lookup(torch.tensor([1, 5]))[1], table.shared[0])  # unseen: level 1
    # both ascend from level k = 2: unique rows initialised from the level-2 vector
    assert table.move(torch.tensor([0, 3]), torch.tensor([ASCEND, ASCEND])).tolist() == [3, 3]
    assert table.num_unique == 2 and table.unique.capacity == 2
    assert table.nbytes() == 78 + (4 * 2 + 4) * 2 == 102
    assert torch.equal(table.lookup(torch.tensor([0, 3])), level_2.expand(2, -1))
    assert table.num_parameters() == (2 + 2) * 2
    # unique -> ascend stays unique; unchanged keeps level 1
    assert table.move(torch.tensor([0, 1]), torch.tensor([ASCEND, UNCHANGED])).tolist() == [3, 1]
    # 3 descends: 1 of 2 rows used is not below half, so the storage stays
    table.move(torch.tensor([3]), torch.tensor([DESCEND]))
    assert (table.unique.capacity, table.nbytes()) == (2, 102)
    assert torch.equal(table.lookup(torch.tensor([3]))[0], table.shared[1])
    # 0 descends: no row used -> compaction to min_capacity 1: the bytes go
    table.move(torch.tensor([0]), torch.tensor([DESCEND]))
    assert (table.num_unique, table.unique.capacity, table.nbytes()) == (0, 1, 90)
    # positions 0: IDs 4, 5; level 1: IDs 1, 2; level 2: IDs 0, 3; unique: none
    assert table.position_counts().tolist() == [2, 2, 2, 0]
    # the ID map doubles to 12 entries: + 9*6
    table.extend_ids(7)
    assert (table.num_embeddings, table.nbytes()) == (7, 90 + 54)
    assert table.positions(torch.tensor([6])).tolist() == [0]


def test_errors() -> None:
    table = HierarchicalSharedEmbedding(5, 2, levels=2)
    with pytest.raises(ValueError, match="distinct"):
        table.move(torch.tensor([1, 1]), torch.tensor([ASCEND, ASCEND]))
    with pytest.raises(ValueError, match="DESCEND"):
        table.move(torch.tensor([1]), torch.tensor([3]))
    with pytest.raises(ValueError, match=r"1\.\.3"):
        table.set_positions(torch.tensor([1]), torch.tensor([0]))
    with pytest.raises(IndexError, match="out of range"):
        table.move(torch.tensor([5]), torch.tensor([ASCEND]))
    with pytest.raises(ValueError, match="levels"):
        HierarchicalSharedEmbedding(5, 2, levels=0)
    with pytest.raises(ValueError, match="below the empty table"):
        HierarchicalSharedEmbedding(5, 2, levels=2, max_bytes=50)


def test_gradients_reach_unique_rows_and_levels_not_the_unused_fallback() -> None:
    table = HierarchicalSharedEmbedding(4, 3, levels=2, min_capacity=2)
    table.observe(torch.tensor([0, 1, 2]))
    table.set_positions(torch.tensor([0, 1]), torch.tensor([3, 2]))
    table.lookup(torch.tensor([0, 1, 1, 2, 3])).sum().backward()
    assert table.unique.weight.grad is not None and table.shared.grad is not None
    assert table.unique.weight.grad[0].tolist() == [1.0, 1.0, 1.0]  # ID 0's row
    assert table.shared.grad.tolist() == [[2.0] * 3, [2.0] * 3]  # IDs 2, 3 level 1; 1 twice
    assert table.unique.fallback.grad is None and not table.unique.fallback.requires_grad


def test_threshold_positions_give_the_fixed_rule_baseline() -> None:
    counts = torch.tensor([0, 4, 5, 19, 20, 300])
    assert threshold_positions(counts, (5, 20)).tolist() == [1, 1, 2, 2, 3, 3]
    with pytest.raises(ValueError, match="decrease"):
        threshold_positions(counts, (20, 5))
    table = HierarchicalSharedEmbedding(6, 2, levels=2, min_capacity=1)
    table.observe(torch.repeat_interleave(torch.arange(6), counts))
    ids = torch.arange(6)
    table.set_positions(ids, threshold_positions(table.counts(ids), (5, 20)))
    assert table.positions(ids).tolist() == [1, 1, 2, 2, 3, 3]
    assert table.num_unique == 2


# --------------------------------------------------------------------------- the byte cap
# d = 2, k = 1, min_capacity = 1, 4 IDs: fixed bytes 8 (unused fallback) + 8 (shared) + 9*4 = 52;
# each unique row costs 4*2 + 4 = 12 bytes.


def test_cap_refuses_promotions_without_a_value() -> None:
    table = HierarchicalSharedEmbedding(4, 2, levels=1, min_capacity=1, max_bytes=52 + 12 * 2)
    table.observe(torch.arange(4))
    # room for two rows: the first two promotions are taken, the third is refused (level k = 1)
    assert table.set_positions(torch.tensor([0, 1, 2]), torch.tensor([2, 2, 2])).tolist() == [
        2,
        2,
        1,
    ]
    assert table.nbytes() == 76 and table.num_unique == 2
    assert table.move(torch.tensor([3]), torch.tensor([ASCEND])).tolist() == [1]
    assert table.nbytes() == 76


def test_cap_demotes_the_lowest_value_first() -> None:
    table = HierarchicalSharedEmbedding(4, 2, levels=1, min_capacity=1, max_bytes=76)
    table.observe(torch.arange(4))
    table.set_positions(torch.tensor([0, 1]), torch.tensor([2, 2]))
    value = torch.tensor([0.1, 0.5, 0.9, 0.0])
    # 2 (0.9) displaces 0 (0.1); 3 (0.0) is worth less than every holder: refused
    assert table.move(torch.tensor([2, 3]), torch.tensor([ASCEND, ASCEND]), value).tolist() == [
        2,
        1,
    ]
    assert table.positions(torch.arange(4)).tolist() == [1, 2, 2, 1]
    assert torch.equal(table.lookup(torch.tensor([0]))[0], table.shared[0])
    # a holder asked to stay unique loses its row to a higher value (and is told so)
    value = torch.tensor([0.8, 0.5, 0.9, 0.7])
    kept = table.set_positions(torch.tensor([1, 0]), torch.tensor([2, 2]), value=value.__getitem__)
    assert kept.tolist() == [1, 2]
    assert table.positions(torch.arange(4)).tolist() == [2, 1, 2, 1]
    # equal values: the holders stay
    assert table.move(torch.tensor([3]), torch.tensor([ASCEND]), torch.ones(4)).tolist() == [1]
    assert table.nbytes() == 76


def test_new_ids_under_a_cap_demote_the_least_frequent() -> None:
    # 120 bytes: 4 IDs leave 68 bytes (4 rows = 48), 5 IDs (map of 8: + 9*4) leave 32 (2 rows)
    table = HierarchicalSharedEmbedding(4, 2, levels=1, min_capacity=1, max_bytes=120)
    table.observe(torch.tensor([0, 0, 0, 1, 1, 2, 2, 2, 2, 3]))  # counts 3, 2, 4, 1
    table.set_positions(torch.arange(4), torch.full((4,), 2))
    assert (table.num_unique, table.nbytes()) == (4, 52 + 48)
    rows_before = table.lookup(torch.tensor([0, 2])).detach().clone()
    table.extend_ids(5)
    assert table.positions(torch.arange(5)).tolist() == [2, 1, 2, 1, 0]
    assert (table.unique.capacity, table.nbytes()) == (2, 52 + 36 + 24)
    assert torch.equal(table.lookup(torch.tensor([0, 2])), rows_before)
    # 9 IDs need a map of 16 entries: 88 + 9*8 = 160 > 120 even without rows
    with pytest.raises(ValueError, match="cannot hold the per-ID state"):
        table.extend_ids(9)
    assert (table.num_embeddings, table.nbytes()) == (5, 112)


@settings(max_examples=60, deadline=None)
@given(
    levels=st.integers(1, 4),
    dim=st.integers(1, 4),
    spare_rows=st.integers(0, 40),
    operations=st.lists(
        st.tuples(
            st.sampled_from(["move", "set", "observe", "extend"]),
            st.integers(0, 2**31 - 1),
            st.booleans(),
        ),
        min_size=1,
        max_size=25,
    ),
)
def test_random_moves_never_exceed_the_cap(
    levels: int, dim: int, spare_rows: int, operations: list[tuple[str, int, bool]]
) -> None:
    start_ids = 8
    unbounded = HierarchicalSharedEmbedding(start_ids, dim, levels=levels, min_capacity=2)
    # room for the ID map to grow from 8 to 64 entries, then new IDs eat the rows' room
    cap = unbounded.nbytes() + spare_rows * (4 * dim + 4) + 9 * 56
    table = HierarchicalSharedEmbedding(
        start_ids, dim, levels=levels, min_capacity=2, max_bytes=cap
    )
    top = levels + 1
    for kind, seed, with_value in operations:
        rng = torch.Generator().manual_seed(seed)
        n = table.num_embeddings
        ids = torch.randperm(n, generator=rng)[: int(torch.randint(1, n + 1, (1,), generator=rng))]
        value = torch.rand(n, generator=rng) if with_value else None
        if kind == "move":
            actions = torch.randint(0, 3, (len(ids),), generator=rng)
            result = table.move(ids, actions, value)
            assert bool(((result >= 1) & (result <= top)).all())
        elif kind == "set":
            positions = torch.randint(1, top + 1, (len(ids),), generator=rng)
            result = table.set_positions(ids, positions, value)
            changed = result != positions
            assert bool((positions[changed] == top).all() and (result[changed] == levels).all())
        elif kind == "observe":
            table.observe(torch.randint(0, n, (30,), generator=rng))
        else:
            try:
                table.extend_ids(n + int(torch.randint(1, 7, (1,), generator=rng)))
            except ValueError as error:
                assert "cannot hold" in str(error)
        assert table.nbytes() <= cap
        # positions and rows agree: unique position <=> holds a row
        every = torch.arange(table.num_embeddings)
        holds = table.unique.has_row(every)
        assert torch.equal(holds, table.positions(every) == top)
        assert table.num_unique == int(holds.sum())


def test_a_parked_row_is_int8_resumes_on_ascent_with_its_optimiser_state() -> None:
    # d = 2, k = 1, min_capacity 2. IDs 0, 1, 2 ascend: rows 0, 1, 2 (capacity 4).
    table = HierarchicalSharedEmbedding(4, 2, levels=1, min_capacity=2, park=True)
    optimizer = torch.optim.Adagrad(table.parameters(), lr=0.1)
    table.row_sync(optimizer)
    table.observe(torch.tensor([0, 1, 2]))
    table.move(torch.tensor([0, 1, 2]), torch.full((3,), ASCEND))
    with torch.no_grad():
        table.unique.weight[:3] = torch.tensor([[0.5, -0.25], [1.27, 0.0], [0.1, 0.2]])
    # one Adagrad step with gradient (1, 1) on every row: sum = 1 per coordinate
    (table.lookup(torch.tensor([0, 1, 2])).sum()).backward()
    optimizer.step()
    held = table.lookup(torch.tensor([0, 1, 2])).detach().clone()  # rows - 0.1
    empty = table.nbytes()
    # ID 1 descends: its row is parked, not lost. Row 1.17, -0.1: scale = 1.17 / 127;
    # values round(1.17 / scale) = 127, round(-0.1 / scale) = -11 -> -11 * 1.17 / 127
    assert table.move(torch.tensor([1]), torch.tensor([DESCEND])).tolist() == [1]
    assert table.num_unique == 2 and table.num_parked == 1
    assert bool(table.is_parked(torch.tensor([1]))) and table.positions(torch.tensor([1])) == 1
    scale = float(torch.tensor(1.17 / 127, dtype=torch.float16))
    expected = torch.tensor([127 * scale, -11 * scale])
    torch.testing.assert_close(table.lookup(torch.tensor([1]))[0], expected)
    assert (table.lookup(torch.tensor([1]))[0] - held[1]).abs().max() <= scale / 2 + 1e-6
    # bytes: the float row stays allocated until compaction (2 of 4 rows used: no shrink), the
    # parked storage is one block of 256 slots of d + 4 = 6 bytes, 255 of them free (int32)
    assert table.nbytes() == empty + 256 * (2 + 2 + 2) + 4 * 255
    # it ascends again: a float row from the parked values, Adagrad's sum at the parked mean 1
    table.move(torch.tensor([1]), torch.tensor([ASCEND]))
    assert table.num_parked == 0 and table.num_unique == 3
    torch.testing.assert_close(table.lookup(torch.tensor([1]))[0], expected)
    row = int(table.unique.rows(torch.tensor([1])))
    state = optimizer.state[table.unique.weight]["sum"]
    torch.testing.assert_close(state[row], torch.ones(2))
    # a new ID promoted meanwhile starts with a fresh sum of squares
    table.observe(torch.tensor([3]))
    table.move(torch.tensor([3]), torch.tensor([ASCEND]))
    assert state.shape[0] == table.unique.capacity
    torch.testing.assert_close(
        optimizer.state[table.unique.weight]["sum"][int(table.unique.rows(torch.tensor([3])))],
        torch.zeros(2),
    )


def test_parked_rows_survive_compaction_and_a_save_load() -> None:
    from leanrec.embeddings import table_from_spec

    table = HierarchicalSharedEmbedding(600, 3, levels=1, min_capacity=4, park=True)
    ids = torch.arange(600)
    table.observe(ids)
    table.move(ids, torch.full((600,), ASCEND))
    before = table.lookup(ids).detach().clone()
    table.move(ids[:500], torch.full((500,), DESCEND))  # 500 parked: two blocks of 256
    assert len(table.parked_scale) == 512 and table.unique.capacity == 128
    table.move(ids[:400], torch.full((400,), ASCEND))  # 100 left: storage shrinks to 1 block
    assert len(table.parked_scale) == 256 and table.num_parked == 100
    now = table.lookup(ids).detach()
    assert (now - before).abs().max() < before.abs().max() / 127  # int8 rounding only
    copy = table_from_spec(table.spec(), 600, 3)
    copy.load_state_dict(table.state_dict())
    assert torch.equal(copy.lookup(ids), table.lookup(ids))
    # a table without parking keeps its state-dict keys (saved models load as before)
    assert "parked_values" not in HierarchicalSharedEmbedding(4, 3).state_dict()


def _parked_and_back(**options: object) -> tuple[HierarchicalSharedEmbedding, torch.Tensor]:
    """d = 2, k = 1: ID 0 ascends, takes one Adagrad step with gradient (2, 0.5) (sums 4 and
    0.25), descends (parked) and ascends again. Returns the table and the resumed row's sums."""
    table = HierarchicalSharedEmbedding(2, 2, levels=1, min_capacity=2, park=True, **options)
    optimizer = torch.optim.Adagrad(table.parameters(), lr=0.1)
    table.row_sync(optimizer)
    table.observe(torch.tensor([0]))
    table.move(torch.tensor([0]), torch.tensor([ASCEND]))
    (table.lookup(torch.tensor([0])) * torch.tensor([2.0, 0.5])).sum().backward()
    optimizer.step()
    table.move(torch.tensor([0]), torch.tensor([DESCEND]))
    table.move(torch.tensor([0]), torch.tensor([ASCEND]))
    row = int(table.unique.rows(torch.tensor([0])))
    return table, optimizer.state[table.unique.weight]["sum"][row]


def test_a_parked_rows_optimiser_state_per_column() -> None:
    # mean: both columns resume at (4 + 0.25) / 2 = 2.125; columns: at 4 and 0.25 (bfloat16
    # holds both exactly); log8: 4 exactly (the row's largest, bfloat16), and 0.25 = 4 * 2^-4,
    # code 8 * 4 = 32, exact too
    assert _parked_and_back()[1].tolist() == [2.125, 2.125]
    assert _parked_and_back(park_state="columns")[1].tolist() == [4.0, 0.25]
    table, sums = _parked_and_back(park_state="log8")
    assert sums.tolist() == [4.0, 0.25]
    assert table.parked_accumulator.dtype == torch.uint8
    # bytes per parked slot: int8 values d, scale 2, codes d, largest sum 2 -> 2d + 4 = 8
    assert table.nbytes() - _parked_and_back(park_state="mean")[0].nbytes() == 256 * (2 - 2 + 2)


def test_log8_state_is_within_a_sixteenth_octave_and_float16_values_round_less() -> None:
    table = HierarchicalSharedEmbedding(4, 17, levels=1, park=True, park_state="log8")
    generator = torch.Generator().manual_seed(0)
    sums = torch.rand(50, 17, generator=generator) * 10.0 ** -torch.randint(2, 9, (50, 1))
    slots = table._free_slots(50)
    table._store_state(slots, sums)
    # sums from 1e-2 down to 1e-9 (a young row's): within 2^(±1/16), and the largest's
    # bfloat16 rounding (2^-9)
    ratio = table._read_state(slots) / sums
    assert float(ratio.min()) >= 2 ** (-1 / 16) - 2e-3
    assert float(ratio.max()) <= 2 ** (1 / 16) + 2e-3
    # float16 values: a parked row comes back within float16 rounding (2^-11 relative)
    table16, _ = _parked_and_back(park_values="float16", park_state="log8")
    assert table16.parked_values.dtype == torch.float16
    with pytest.raises(ValueError, match="park_values"):
        HierarchicalSharedEmbedding(4, 2, park=True, park_values="int4")


def test_fresh_accumulator_starts_a_new_rows_sum_a_resumed_row_keeps_its_own() -> None:
    table = HierarchicalSharedEmbedding(3, 2, levels=1, min_capacity=2, park=True,
                                        park_state="columns", fresh_accumulator=0.5)  # fmt: skip
    optimizer = torch.optim.Adagrad(table.parameters(), lr=0.1)
    table.row_sync(optimizer)
    table.observe(torch.tensor([0, 1]))
    table.move(torch.tensor([0, 1]), torch.full((2,), ASCEND))
    # the first step: lr * g / sqrt(0.5 + g^2) with g = 1 -> 0.1 / sqrt(1.5), not lr * sign(g)
    before = table.lookup(torch.tensor([0])).detach().clone()
    table.lookup(torch.tensor([0])).sum().backward()
    optimizer.step()
    step = before - table.lookup(torch.tensor([0])).detach()
    torch.testing.assert_close(step, torch.full((1, 2), 0.1 / 1.5**0.5))
    table.move(torch.tensor([0]), torch.tensor([DESCEND]))  # parked with sums 1.5
    table.observe(torch.tensor([2]))
    table.move(torch.tensor([0, 2]), torch.full((2,), ASCEND))
    state = optimizer.state[table.unique.weight]["sum"]
    rows = table.unique.rows(torch.tensor([0, 2]))
    torch.testing.assert_close(state[rows], torch.tensor([[1.5, 1.5], [0.5, 0.5]]))
    copy = table_from_spec_of(table)
    assert copy.fresh_accumulator == 0.5 and copy.park_state == "columns"


def table_from_spec_of(table: HierarchicalSharedEmbedding) -> HierarchicalSharedEmbedding:
    """A table rebuilt from ``table``'s spec and state dict (a saved model's round trip)."""
    from leanrec.embeddings import table_from_spec

    copy = table_from_spec(table.spec(), table.num_embeddings, table.embedding_dim)
    copy.load_state_dict(table.state_dict())
    ids = torch.arange(table.num_embeddings)
    assert torch.equal(copy.lookup(ids), table.lookup(ids))
    assert isinstance(copy, HierarchicalSharedEmbedding)
    return copy


def test_profile_state_is_the_rows_mean_times_the_tables_column_shape() -> None:
    # rows parked with column sums (4, 0.25) and (1, 1): means 2.125 and 1, shapes (each sum
    # over its row's mean) (32/17, 2/17) and (1, 1); the profile is their mean
    # ((32/17 + 1) / 2, (2/17 + 1) / 2) = (49/34, 19/34), and a row resumes at its mean times it
    table = HierarchicalSharedEmbedding(4, 2, levels=1, park=True, park_state="profile")
    slots = table._free_slots(2)
    table._store_state(slots, torch.tensor([[4.0, 0.25], [1.0, 1.0]]))
    torch.testing.assert_close(table.parked_profile, torch.tensor([49 / 34, 19 / 34]))
    resumed = torch.tensor([[2.125 * 49 / 34, 2.125 * 19 / 34], [49 / 34, 19 / 34]])
    torch.testing.assert_close(table._read_state(slots), resumed)
    # a later row counts as one row more: profile (2 * (49/34, 19/34) + (1, 1)) / 3
    table._store_state(table._free_slots(1), torch.tensor([[2.0, 2.0]]))
    torch.testing.assert_close(
        table.parked_profile, torch.tensor([(49 / 17 + 1) / 3, (19 / 17 + 1) / 3])
    )
    assert int(table.parked_profile_rows) == 3
    assert torch.equal(table_from_spec_of(table).parked_profile, table.parked_profile)
    # no bytes per parked row beyond the mean's 2: d + 4 per slot, the profile once per table
    plain = HierarchicalSharedEmbedding(4, 2, levels=1, park=True)
    plain._free_slots(3)
    assert table.nbytes() == plain.nbytes() + 4 * 2 + 8


def test_residual_rows_read_level_k_plus_the_row_until_the_nth_event_folds_it() -> None:
    # d = 2, k = 1, N = 3; level 1's vector s = (1, 2). ID 0 gets a row after one event: it
    # starts at s - s = 0 (it reads s, as before). With row r = (0.5, 0), ID 0 reads
    # s + r = (1.5, 2); a gradient (1, 1) on it reaches both s and r. Two more events make 3:
    # s is folded into the row, which then reads (1.5, 2) alone, whatever s becomes.
    table = HierarchicalSharedEmbedding(3, 2, levels=1, min_capacity=2, residual_until=3)
    with torch.no_grad():
        table.shared[0] = torch.tensor([1.0, 2.0])
    table.observe(torch.tensor([0]))
    table.move(torch.tensor([0]), torch.tensor([ASCEND]))
    row = int(table.unique.rows(torch.tensor([0])))
    assert table.unique.weight[row].tolist() == [0.0, 0.0]
    with torch.no_grad():
        table.unique.weight[row] = torch.tensor([0.5, 0.0])
    assert table.lookup(torch.tensor([0, 1])).tolist() == [[1.5, 2.0], [1.0, 2.0]]
    table.lookup(torch.tensor([0])).sum().backward()
    assert table.shared.grad is not None and table.shared.grad[0].tolist() == [1.0, 1.0]
    assert table.unique.weight.grad is not None
    assert table.unique.weight.grad[row].tolist() == [1.0, 1.0]
    bytes_before = table.nbytes()
    table.observe(torch.tensor([0, 0]))  # the 3rd event: folded
    assert table.unique.weight[row].tolist() == [1.5, 2.0]
    with torch.no_grad():
        table.shared[0] = torch.tensor([-7.0, 7.0])
    assert table.lookup(torch.tensor([0])).tolist() == [[1.5, 2.0]]
    assert table.nbytes() == bytes_before  # youth is read off the counts: no bytes
    # a table without the option reads a row alone and writes the spec it wrote before
    assert "residual_until" not in HierarchicalSharedEmbedding(3, 2).spec()
    assert table.spec()["residual_until"] == 3


def test_a_parked_young_row_stays_a_residual_and_is_folded_when_parked() -> None:
    # d = 2, k = 1, N = 2, s = (0.5, -0.5): ID 0 (1 event) holds r = (0.25, 0.5) and is
    # parked; it reads s + int8(r) = (0.75, 0). Its 2nd event folds s into the parked values:
    # it still reads (0.75, 0) (int8 rounding: scale 0.75/127), now whatever s becomes; a
    # round trip through the spec and the state dict reads the same.
    from leanrec.embeddings import table_from_spec

    table = HierarchicalSharedEmbedding(2, 2, levels=1, min_capacity=2, park=True, residual_until=2)
    with torch.no_grad():
        table.shared[0] = torch.tensor([0.5, -0.5])
    table.observe(torch.tensor([0]))
    table.move(torch.tensor([0]), torch.tensor([ASCEND]))
    with torch.no_grad():
        table.unique.weight[int(table.unique.rows(torch.tensor([0])))] = torch.tensor([0.25, 0.5])
    table.move(torch.tensor([0]), torch.tensor([DESCEND]))
    assert bool(table.is_parked(torch.tensor([0])))
    read = table.lookup(torch.tensor([0]))[0]
    assert torch.allclose(read, torch.tensor([0.75, 0.0]), atol=0.5 / 127)
    table.observe(torch.tensor([0]))
    with torch.no_grad():
        table.shared[0] = torch.tensor([9.0, 9.0])
    folded = table.lookup(torch.tensor([0]))[0]
    assert torch.allclose(folded, torch.tensor([0.75, 0.0]), atol=0.75 / 127)
    copy = table_from_spec(table.spec(), 2, 2)
    copy.load_state_dict(table.state_dict())
    assert torch.equal(copy.lookup(torch.arange(2)), table.lookup(torch.arange(2)))
