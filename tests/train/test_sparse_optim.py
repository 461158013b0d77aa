"""Row-wise table updates (RowWiseOptimizer): hand-computed steps, untouched rows, masks,
accuracy against dense Adam, kill and resume, and the three trainers' wiring."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from leanrec.data.interactions import Split
from leanrec.data.sequential import NextItemSplit
from leanrec.data.splits import ratio_split
from leanrec.data.synthetic import make_synthetic
from leanrec.embeddings.base import EmbeddingTable, sparse_gradients
from leanrec.embeddings.full import FullEmbedding
from leanrec.embeddings.masked import MaskedEmbedding
from leanrec.embeddings.pruned import ElementMaskedEmbedding, SoftThresholdEmbedding
from leanrec.embeddings.ragged import RaggedEmbedding
from leanrec.models import build_model
from leanrec.models.seq import build_next_item_model
from leanrec.train import BPRTrainer, TrainerConfig, row_optim
from leanrec.train.pointwise import CTRTrainer, CTRTrainerConfig
from leanrec.train.row_optim import RowWiseOptimizer, trainer_optimizer
from leanrec.train.sequential import SequentialTrainer, SequentialTrainerConfig
from leanrec.train.step import clip_gradients
from tests.models.ctr.synthetic import make_samples
from tests.train.test_sequential import _cycle_data

pytestmark = pytest.mark.usefixtures("one_torch_thread")

ROWS = [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]


def _step(
    table: EmbeddingTable,
    optimizer: torch.optim.Optimizer,
    ids: list[int],
    grads: list[list[float]],
) -> None:
    """One step on ``loss = sum_b <lookup(ids)[b], grads[b]>``: row ``n``'s gradient is the sum
    of ``grads[b]`` over the ``b`` with ``ids[b] = n``."""
    with sparse_gradients([table], catch_up=getattr(optimizer, "catch_up", None)):
        loss = (table.lookup(torch.tensor(ids)) * torch.tensor(grads)).sum()
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def _assert_rows(table: FullEmbedding, expected: list[list[float]]) -> None:
    torch.testing.assert_close(table.weight.detach(), torch.tensor(expected), atol=1e-5, rtol=0)


def _optimizer(
    table: EmbeddingTable, rule: str, lr: float, eps: float = 1e-8, dense_share: int | None = None
) -> RowWiseOptimizer:
    """The row-wise optimiser of ``table`` (by default row by row even on tiny tables)."""
    params = table.row_parameters()
    return RowWiseOptimizer([{"params": params}], [], rule, lr=lr, eps=eps, dense_share=dense_share)


# ---------------------------------------------------------------------------- by hand
def test_sparse_adam_by_hand_on_a_three_row_table() -> None:
    table = FullEmbedding.from_tensor(torch.tensor(ROWS))
    optimizer = _optimizer(table, "sparse_adam", lr=0.1)
    # ids 0, 0, 2: row 0's gradient is (1, -1) + (1, -1) = (2, -2), row 2's is (2, 0).
    # Step 1: m̂ = g, v̂ = g², so each value moves by -0.1 sign(g) (0 where g = 0).
    _step(table, optimizer, [0, 0, 2], [[1.0, -1.0], [1.0, -1.0], [2.0, 0.0]])
    _assert_rows(table, [[0.9, 2.1], [3.0, 4.0], [4.9, 6.0]])
    # Step 2 reads rows 1 and 2 only. Row 2, g = (2, 0): m = 0.9·0.2 + 0.1·2 = 0.38,
    # m̂ = 0.38 / (1 − 0.9²) = 2; v = 0.999·0.004 + 0.001·4 = 0.007996, v̂ = 0.007996 / 0.001999
    # = 4: it moves by 0.1 again. Row 1, g = (−3, 0), first moments at step 2: m̂ = 0.1·3 / 0.19,
    # v̂ = 0.001·9 / 0.001999, a move of 0.1 · 0.526316 / 0.707284 = 0.074413. Row 0, not read,
    # is not touched.
    _step(table, optimizer, [1, 2], [[-3.0, 0.0], [2.0, 0.0]])
    _assert_rows(table, [[0.9, 2.1], [3.074413, 4.0], [4.8, 6.0]])
    # The flush gives row 0 the step dense Adam gave it at step 2 on its moments alone:
    # m = 0.9·0.2 = 0.18, v = 0.999·0.004 = 0.003996, a move of
    # 0.1 · (0.18 / 0.19) / √(0.003996 / 0.001999) = 0.067006 against the sign of g.
    optimizer.flush()
    _assert_rows(table, [[0.832994, 2.167006], [3.074413, 4.0], [4.8, 6.0]])
    state = optimizer.state[table.weight]
    assert (int(state["step"]), state["last"].tolist()) == (2, [2.0, 2.0, 2.0])


def test_lazy_adam_by_hand_counts_steps_per_row_and_loses_skipped_ones() -> None:
    table = FullEmbedding.from_tensor(torch.tensor(ROWS))
    optimizer = _optimizer(table, "lazy_adam", lr=0.1)
    _step(table, optimizer, [0, 0, 2], [[1.0, -1.0], [1.0, -1.0], [2.0, 0.0]])
    _assert_rows(table, [[0.9, 2.1], [3.0, 4.0], [4.9, 6.0]])
    # Row 1's first step comes at the optimiser's second step: its own step count is 1, so it
    # moves by exactly 0.1 (dense Adam: 0.074413, above). Row 2 moves by 0.1 as above; row 0
    # stays where it is, also after a flush (lazy Adam drops skipped steps).
    _step(table, optimizer, [1, 2], [[-3.0, 0.0], [2.0, 0.0]])
    optimizer.flush()
    _assert_rows(table, [[0.9, 2.1], [3.1, 4.0], [4.8, 6.0]])
    assert optimizer.state[table.weight]["step"].tolist() == [1.0, 1.0, 2.0]


def test_rowwise_adagrad_by_hand_on_a_three_row_table() -> None:
    table = FullEmbedding.from_tensor(torch.tensor(ROWS))
    optimizer = _optimizer(table, "rowwise_adagrad", lr=1.0, eps=0.0)
    _step(table, optimizer, [0, 0, 2], [[1.0, -1.0], [1.0, -1.0], [2.0, 0.0]])
    # row 0: s = mean(4, 4) = 4, w -= (2, -2) / 2 -> (0, 3); row 2: s = mean(4, 0) = 2,
    # w -= (2, 0) / √2 -> (5 - √2, 6); row 1 untouched
    expected = [[0.0, 3.0], [3.0, 4.0], [5.0 - math.sqrt(2.0), 6.0]]
    _assert_rows(table, expected)
    assert optimizer.state[table.weight]["sum"].tolist() == [4.0, 0.0, 2.0]


def test_sparse_adam_follows_dense_adam_on_sparse_batches() -> None:
    """300 steps reading 5 random rows of 50: caught-up row-wise Adam (flushed twice) ends
    where dense Adam on the dense gradients ends (lazy Adam is 0.64 away here)."""
    torch.manual_seed(0)
    start, target = torch.randn(50, 4), torch.randn(50, 4)
    ours, theirs = FullEmbedding.from_tensor(start), FullEmbedding.from_tensor(start)
    row_wise = _optimizer(ours, "sparse_adam", lr=0.01)
    adam = torch.optim.Adam([theirs.weight], lr=0.01)
    generator = torch.Generator().manual_seed(1)
    for step in range(300):
        ids = torch.randint(0, 50, (5,), generator=generator)
        with sparse_gradients([ours], catch_up=row_wise.catch_up):
            loss = (ours.lookup(ids) - target[ids]).pow(2).sum()
        row_wise.zero_grad()
        loss.backward()
        row_wise.step()
        adam.zero_grad()
        (theirs.lookup(ids) - target[ids]).pow(2).sum().backward()
        adam.step()
        if step == 150:
            row_wise.flush()
    row_wise.flush()
    assert (theirs.weight - start).abs().mean() > 0.5  # they did travel
    torch.testing.assert_close(ours.weight.detach(), theirs.weight.detach(), atol=1e-5, rtol=0)


def test_moments_a_lookup_caught_up_go_to_the_step_with_the_same_bits() -> None:
    """The step takes the moments the lookup caught up (not written back in between); the
    result is bit for bit that of writing them back first (``state_dict()`` does) and reading
    them again, also when a table is read twice in one step (rows the first read caught up,
    or others: then the first's are written back) or a step reads no row of a table."""
    torch.manual_seed(0)
    start = torch.randn(40, 8)
    tables = [FullEmbedding.from_tensor(start), FullEmbedding.from_tensor(start)]
    optimizers = [_optimizer(table, "sparse_adam", lr=0.05) for table in tables]
    generator = torch.Generator().manual_seed(2)
    for step in range(60):
        ids = torch.randint(0, 40, (12,), generator=generator)  # repeats included
        more = torch.randint(0, 40, (5,), generator=generator)
        for kept_aside, (table, optimizer) in enumerate(zip(tables, optimizers)):
            with sparse_gradients([table], catch_up=optimizer.catch_up):
                loss = table.lookup(ids).pow(2).sum()
                if step % 7 == 3:  # a second read of the same table before the step
                    loss = loss + table.lookup(more).sum()
                elif step % 7 == 4:  # a second read of rows the first caught up
                    loss = loss + table.lookup(ids[:4]).sum()
            if not kept_aside:
                optimizer.state_dict()  # writes the caught-up moments back
            optimizer.zero_grad(set_to_none=True)
            if step % 11 != 5:  # else: rows read, no gradient, no step for them
                loss.backward()
            optimizer.step()
        assert torch.equal(tables[0].weight, tables[1].weight), step
    for optimizer in optimizers:
        optimizer.flush()
    assert torch.equal(tables[0].weight, tables[1].weight)
    states = [optimizer.state[table.weight] for table, optimizer in zip(tables, optimizers)]
    for key in ("exp_avg", "exp_avg_sq", "last", "step"):
        assert torch.equal(states[0][key], states[1][key]), key
    assert (start - tables[0].weight).abs().mean() > 0.1  # they did travel


def test_a_lookup_reads_the_caught_up_rows_and_the_table_is_written_by_the_step() -> None:
    """The lookup's rows come from the rows the catch-up holds (the same values as gathering
    them from the table after writing them back); ``all()`` between the lookup and the step
    and a lookup whose rows get no gradient see the table written; after every step the
    tables, moments and last steps equal those of writing everything back at each lookup."""
    torch.manual_seed(1)
    start = torch.randn(60, 8)
    tables = [FullEmbedding.from_tensor(start), FullEmbedding.from_tensor(start)]
    optimizers = [_optimizer(table, "sparse_adam", lr=0.05) for table in tables]
    generator = torch.Generator().manual_seed(3)
    for step in range(40):
        ids = torch.randint(0, 60, (10,), generator=generator)
        outputs = []
        for written_back, (table, optimizer) in enumerate(zip(tables, optimizers)):
            with sparse_gradients([table], catch_up=optimizer.catch_up):
                rows = table.lookup(ids)
                if written_back:
                    optimizer.state_dict()  # writes back what the lookup caught up
                every = table.all()  # a read of every row between the lookup and the step
                loss = rows.pow(2).sum() + (every[:3] * 0.1).sum()
            outputs.append((rows.detach().clone(), every.detach().clone()))
            optimizer.zero_grad(set_to_none=True)
            if step % 9 != 4:  # else: no gradient, the step writes the held rows as they are
                loss.backward()
            optimizer.step()
        assert torch.equal(outputs[0][0], outputs[1][0]), step
        assert torch.equal(outputs[0][1], outputs[1][1]), step
        assert torch.equal(tables[0].weight, tables[1].weight), step
        states = [optimizer.state[table.weight] for table, optimizer in zip(tables, optimizers)]
        for key in ("exp_avg", "exp_avg_sq", "last"):
            assert torch.equal(states[0][key], states[1][key]), (step, key)


def test_catch_up_of_rows_never_stepped_equals_the_plain_square_root() -> None:
    """``_root`` takes the root of ``2⁻¹²⁶`` where ``v`` is 0 (torch's ``sqrt`` is slow on
    zeros) and adds no ``1e-30`` (under half an ulp of any root of a normal number); ``m`` is
    0 where ``v`` is, so the caught-up rows are bit for bit those of ``√v + 1e-30``: rows
    never stepped, masked values and normal rows together, and rows with no zero."""
    generator = torch.Generator().manual_seed(4)
    weight = torch.randn(50, 16, generator=generator)
    exp_avg_sq = torch.rand(50, 16, generator=generator) * 1e-6
    exp_avg = torch.randn(50, 16, generator=generator) * 1e-4
    exp_avg_sq[::3] = 0.0  # rows never stepped
    exp_avg[::3] = 0.0
    exp_avg_sq[1::3, 10:] = 0.0  # masked values
    exp_avg[1::3, 10:] = 0.0
    coefficient = torch.rand(50, 1, generator=generator) * -1e-2
    plain = weight.addcdiv(exp_avg * coefficient, exp_avg_sq.sqrt().add_(1e-30))
    ours = weight.addcdiv(exp_avg * coefficient, row_optim._root(exp_avg_sq))
    assert torch.equal(plain.view(torch.int32), ours.view(torch.int32))
    dense = exp_avg_sq[2::3]  # no zero: the root alone, equal to the root plus 1e-30
    assert torch.equal(row_optim._root(dense), dense.sqrt().add_(1e-30))
    smallest = torch.full((2, 3), row_optim.SMALLEST_NORMAL)  # √ = 2^-63 swallows 1e-30
    assert torch.equal(row_optim._root(smallest), smallest.sqrt().add_(1e-30))
    assert row_optim._root(torch.zeros(0, 4)).shape == (0, 4)


def test_row_copies_equal_indexing_whatever_the_layout() -> None:
    """The optimiser's row gathers and scatters (whole rows through NumPy where the layout
    allows, else torch's) equal plain indexing bit for bit."""
    generator = torch.Generator().manual_seed(6)
    rows = torch.tensor([7, 0, 31, 12])
    for table in (
        torch.randn(40, 64, generator=generator),  # whole rows
        torch.randn(40, 3, generator=generator),  # rows of 12 bytes
        torch.randn(40, 128, generator=generator)[:, ::2],  # not contiguous: torch's copies
        torch.randn(40, 8, generator=generator).double(),
    ):
        assert torch.equal(row_optim._gather(table, rows), table[rows])
        values = torch.randn(len(rows), table.shape[1], generator=generator).to(table.dtype)
        expected = table.clone()
        expected[rows] = values
        row_optim._scatter(table, rows, values)
        assert torch.equal(table, expected)
    assert row_optim._gather(torch.randn(5, 4), torch.zeros(0, dtype=torch.int64)).shape == (0, 4)


def test_distinct_ids_equal_torch_unique() -> None:
    generator = torch.Generator().manual_seed(5)
    for size in (0, 1, 17, 5000):
        index = torch.randint(0, 300, (size,), generator=generator)
        rows, inverse = row_optim._distinct(index)
        expected_rows, expected_inverse = torch.unique(index, return_inverse=True)
        assert rows.dtype == inverse.dtype == torch.int64
        assert torch.equal(rows, expected_rows) and torch.equal(inverse, expected_inverse)


def test_a_state_dict_between_lookup_and_step_holds_the_caught_up_moments() -> None:
    table = FullEmbedding.from_tensor(torch.tensor(ROWS))
    optimizer = _optimizer(table, "sparse_adam", lr=0.1)
    _step(table, optimizer, [0, 2], [[1.0, -1.0], [2.0, 0.0]])
    _step(table, optimizer, [1], [[1.0, 1.0]])  # rows 0 and 2 skip step 2
    with sparse_gradients([table], catch_up=optimizer.catch_up):
        table.lookup(torch.tensor([0, 0]))  # row 0 caught up to step 2
    saved = optimizer.state_dict()["state"][0]
    # row 0: m = 0.1 (1, -1) at step 1, decayed once: 0.09 (1, -1); its last step is 2;
    # row 2 (not read) keeps its step-1 moments and last step
    torch.testing.assert_close(saved["exp_avg"][0], torch.tensor([0.09, -0.09]))
    torch.testing.assert_close(saved["exp_avg"][2], torch.tensor([0.2, 0.0]))
    assert saved["last"].tolist() == [2.0, 2.0, 1.0]


def test_a_batch_reading_most_rows_steps_them_all_with_the_same_update() -> None:
    """Reading 2 of 3 rows with ``dense_share = 2`` takes the dense step: row 0, not read,
    moves at once by the step the row-by-row rule gives it at the flush."""
    tables = [FullEmbedding.from_tensor(torch.tensor(ROWS)) for _ in range(2)]
    optimizers = [
        _optimizer(tables[0], "sparse_adam", 0.1),
        _optimizer(tables[1], "sparse_adam", 0.1, dense_share=2),
    ]
    for table, optimizer in zip(tables, optimizers, strict=True):
        _step(table, optimizer, [0, 0, 2], [[1.0, -1.0], [1.0, -1.0], [2.0, 0.0]])
        _step(table, optimizer, [1, 2], [[-3.0, 0.0], [2.0, 0.0]])
    _assert_rows(tables[1], [[0.832994, 2.167006], [3.074413, 4.0], [4.8, 6.0]])
    optimizers[0].flush()
    torch.testing.assert_close(
        tables[0].weight.detach(), tables[1].weight.detach(), atol=1e-6, rtol=0
    )


def test_a_dense_gradient_steps_every_row_as_adam_does() -> None:
    """A graph model propagating every row gives a dense gradient: lazy Adam over all rows
    (equal step counts) is Adam."""
    torch.manual_seed(0)
    start = torch.randn(20, 4)
    ours, theirs = FullEmbedding.from_tensor(start), FullEmbedding.from_tensor(start)
    row_wise = _optimizer(ours, "sparse_adam", lr=0.05)
    adam = torch.optim.Adam([theirs.weight], lr=0.05)
    target = torch.randn(20, 4)
    for _ in range(5):
        for table, optimizer in ((ours, row_wise), (theirs, adam)):
            optimizer.zero_grad()
            ((table.all() - target) ** 2).sum().backward()
            optimizer.step()
    assert torch.allclose(ours.weight, theirs.weight, atol=1e-6)


# ---------------------------------------------------------------------------- every table kind
def _tables() -> list[EmbeddingTable]:
    torch.manual_seed(0)
    weight = torch.randn(6, 4)
    mask = torch.rand(6, 4) > 0.3
    return [
        FullEmbedding.from_tensor(weight),
        MaskedEmbedding.from_tensor(weight, sizes=[4, 2, 1, 3, 0, 4]),
        SoftThresholdEmbedding(weight, threshold_init=-1.0),
        ElementMaskedEmbedding(weight, mask),
        RaggedEmbedding.from_dense(weight, [4, 2, 1, 3, 0, 4]),
    ]


@pytest.mark.parametrize("index", range(len(_tables())), ids=lambda i: type(_tables()[i]).__name__)
def test_every_table_reads_the_rows_a_lookup_caught_up_in_all(index: int) -> None:
    """``all()`` (and a pruned table's kept values) between a lookup and its step read the rows
    ``sparse_adam`` caught up and holds, as if they had been written back at the lookup."""
    generator = torch.Generator().manual_seed(5)
    tables = [_tables()[index], _tables()[index]]
    optimizers = [_optimizer(table, "sparse_adam", lr=0.1) for table in tables]
    for step in range(8):
        ids = torch.randint(0, 6, (2,), generator=generator)
        reads = []
        for written_back, (table, optimizer) in enumerate(zip(tables, optimizers)):
            with sparse_gradients([table], catch_up=optimizer.catch_up):
                rows = table.lookup(ids)
                if written_back:
                    optimizer.state_dict()  # writes back what the lookup caught up
                with torch.no_grad():  # a read only: the step is the batch's rows alone
                    every = table.all().clone()
                    kept = table.kept_mask() if hasattr(table, "kept_mask") else None
                loss = rows.pow(2).sum()
            reads.append((every, kept))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        assert torch.equal(reads[0][0], reads[1][0]), step
        if reads[0][1] is not None:
            assert torch.equal(reads[0][1], reads[1][1]), step


@pytest.mark.parametrize("rule", ["sparse_adam", "lazy_adam", "rowwise_adagrad"])
@pytest.mark.parametrize("table", _tables(), ids=lambda t: type(t).__name__)
def test_rows_not_in_the_batch_are_bit_identical_after_steps(
    table: EmbeddingTable, rule: str
) -> None:
    optimizer = _optimizer(table, rule, lr=0.1)
    before = table.all().detach().clone()
    params_before = [p.detach().clone() for p in table.row_parameters()]
    for _ in range(3):
        with sparse_gradients([table], catch_up=optimizer.catch_up):
            loss = table.lookup(torch.tensor([1, 3, 3])).pow(2).sum()
        optimizer.zero_grad()
        loss.backward()
        assert all(p.grad is not None and p.grad.is_sparse for p in table.row_parameters())
        optimizer.step()
    after = table.all().detach()
    for row in (0, 2, 4, 5):
        assert torch.equal(after[row], before[row]), row
    moved = [
        not torch.equal(p.detach(), old) for p, old in zip(table.row_parameters(), params_before)
    ]
    assert any(moved)  # the rows read did move
    if isinstance(table, RaggedEmbedding):  # values outside rows 1 and 3's stretches stay
        offsets = table.offsets.tolist()
        read = set(range(offsets[1], offsets[2])) | set(range(offsets[3], offsets[4]))
        values, old = table.values.detach(), params_before[0]
        for index in range(values.numel()):
            if index not in read:
                assert values[index] == old[index]
    assert not table.sparse_gradients and table.catch_up is None  # the block restored them


def test_masked_entries_stay_zero_and_their_weights_untouched() -> None:
    table = MaskedEmbedding.from_tensor(torch.randn(3, 4), sizes=[4, 2, 1])
    hidden = ~torch.tensor([[True] * 4, [True, True, False, False], [True, False, False, False]])
    weights_before = table.weight.detach().clone()
    optimizer = _optimizer(table, "sparse_adam", lr=0.5)
    for step in range(6):
        ids = torch.tensor([0, 1, 2, 2] if step % 2 else [0])  # rows 1, 2 skip steps
        with sparse_gradients([table], catch_up=optimizer.catch_up):
            loss = (table.lookup(ids) - 1.0).pow(2).sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    optimizer.flush()
    assert torch.equal(table.weight.detach()[hidden], weights_before[hidden])
    assert bool((table.all().detach()[hidden] == 0).all())
    assert not torch.equal(table.weight.detach()[~hidden], weights_before[~hidden])


def test_pep_thresholds_move_for_the_rows_read_only() -> None:
    table = SoftThresholdEmbedding(torch.randn(4, 3), threshold_init=-2.0)
    optimizer = _optimizer(table, "sparse_adam", lr=0.1)
    thresholds = table.threshold.detach().clone()
    with sparse_gradients([table]):
        loss = table.lookup(torch.tensor([0, 2])).abs().sum()  # smaller |ê|: raise s
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    moved = (table.threshold.detach() != thresholds).flatten().tolist()
    assert moved == [True, False, True, False]
    assert bool((table.threshold.detach()[[0, 2]] > thresholds[[0, 2]]).all())


# ---------------------------------------------------------------------------- trainers
@pytest.fixture(scope="module")
def split() -> Split:
    data = make_synthetic(n_users=300, n_items=200, n_interactions=9000, seed=3)
    return ratio_split(data, ratios=(0.8, 0.1, 0.1), seed=3)


def test_sparse_adam_mf_reaches_dense_adams_validation_metric(split: Split) -> None:
    """Both train MF to early stopping on the same tiny data; the best validation NDCG@20 of
    lazy Adam is within 0.01 of dense Adam's (seen: 0.286 against 0.285)."""
    best = {}
    for name in ("dense_adam", "sparse_adam"):
        config = TrainerConfig(
            max_epochs=60,
            learning_rate=0.01,
            batch_size=512,
            patience=5,
            embedding_optimizer=name,
            seed=7,
        )
        model = build_model("mf", split.train, {"embedding_dim": 16}, seed=1)
        result = BPRTrainer(model, split.train, split.valid, config).fit()
        best[name] = result.best_valid["ndcg@20"]
        assert not any(t.sparse_gradients for t in model.embedding_tables().values())
    untrained = BPRTrainer(
        build_model("mf", split.train, {"embedding_dim": 16}, seed=1), split.train, split.valid
    ).validate()
    assert untrained is not None
    assert best["dense_adam"] > untrained.mean["ndcg@20"] + 0.05
    assert best["sparse_adam"] == pytest.approx(best["dense_adam"], abs=0.01)


@pytest.mark.parametrize("name", ["sparse_adam", "lazy_adam", "rowwise_adagrad"])
def test_a_killed_row_wise_run_resumes_to_the_uninterrupted_one(
    split: Split, tmp_path: Path, name: str
) -> None:
    config = TrainerConfig(
        max_epochs=5, learning_rate=0.01, batch_size=1024, patience=100, seed=7,
        embedding_optimizer=name,
    )  # fmt: skip

    def fresh() -> torch.nn.Module:
        return build_model("mf", split.train, {"embedding_dim": 8}, seed=1)

    straight = fresh()
    whole = BPRTrainer(straight, split.train, split.valid, config)
    whole.fit()

    def kill(epoch: int, record: dict[str, float]) -> None:
        if epoch == 3:  # after epoch 3's checkpoint, before epoch 4
            raise KeyboardInterrupt

    path = tmp_path / "state.pt"
    with pytest.raises(KeyboardInterrupt):
        BPRTrainer(fresh(), split.train, split.valid, config, path, on_epoch=kill).fit()
    resumed_model = fresh()
    resumed = BPRTrainer(resumed_model, split.train, split.valid, config, path)
    result = resumed.fit(resume=True)
    assert [r["epoch"] for r in result.history] == [1, 2, 3, 4, 5]
    for key, value in straight.state_dict().items():
        assert torch.equal(resumed_model.state_dict()[key], value), key
    ours, theirs = resumed.optimizer.state_dict()["state"], whole.optimizer.state_dict()["state"]
    for index, state in theirs.items():
        for key, value in state.items():
            assert torch.equal(ours[index][key], value), (index, key)


def test_resume_refuses_another_embedding_optimizer(split: Split, tmp_path: Path) -> None:
    path = tmp_path / "state.pt"
    config = TrainerConfig(max_epochs=1, batch_size=1024, embedding_optimizer="dense_adam")
    model = build_model("mf", split.train, {"embedding_dim": 8}, seed=1)
    BPRTrainer(model, split.train, split.valid, config, path).fit()
    other = TrainerConfig(max_epochs=2, batch_size=1024, embedding_optimizer="sparse_adam")
    again = BPRTrainer(model, split.train, split.valid, other, path)
    with pytest.raises(ValueError, match="dense_adam"):
        again.fit(resume=True)


def test_configs_name_the_optimiser_and_old_saved_configs_read_dense() -> None:
    with pytest.raises(ValueError, match="embedding_optimizer"):
        TrainerConfig(embedding_optimizer="sgd")
    with pytest.raises(ValueError, match="embedding_optimizer"):
        CTRTrainerConfig(embedding_optimizer="adam")
    with pytest.raises(ValueError, match="embedding_optimizer"):
        SequentialTrainerConfig(embedding_optimizer="adam")
    saved = {"max_epochs": 3}  # written before the option existed
    assert TrainerConfig.from_dict(saved).embedding_optimizer == "dense_adam"


def test_dense_adam_is_the_plain_torch_adam_and_the_learning_rates_split() -> None:
    table, linear = FullEmbedding(5, 2), torch.nn.Linear(2, 1)
    groups = [{"params": [table.weight]}, {"params": list(linear.parameters())}]
    dense = trainer_optimizer("dense_adam", groups, [table.weight], lr=0.01)
    assert type(dense) is torch.optim.Adam
    row_wise = trainer_optimizer(
        "sparse_adam", groups, [table.weight], lr=0.01, embedding_learning_rate=0.1
    )
    assert [(g["rowwise"], g["lr"]) for g in row_wise.param_groups] == [(True, 0.1), (False, 0.01)]


def test_ctr_trainer_row_wise_updates_every_table(tmp_path: Path) -> None:
    train, _ = make_samples(3000, seed=1)
    valid, _ = make_samples(1000, seed=2)
    from leanrec.models.ctr import build_ctr_model

    model = build_ctr_model("deepfm", train.feature_map, seed=0, embedding_dim=8, mlp_dims=(16,))
    config = CTRTrainerConfig(
        batch_size=256, learning_rate=3e-3, max_epochs=3, embedding_optimizer="sparse_adam"
    )
    result = CTRTrainer(config).fit(model, train, valid)
    assert result.best_valid["auc"] > 0.7
    tables = [m for m in model.modules() if isinstance(m, EmbeddingTable)]
    assert len(tables) > len(model.embedding_tables())  # first-order tables are row-wise too
    assert not any(t.sparse_gradients for t in tables)


def test_sequential_trainer_learns_with_row_wise_item_updates() -> None:
    """SASRec on users walking one cycle of items (the next item is determined): row-wise item
    updates (with clipping) learn it as dense Adam does (both reach hit@5 = 1 here)."""
    split = NextItemSplit.from_interactions(
        _cycle_data(n_users=400, n_items=150, seed=0), max_length=10, n_negatives=50, seed=0
    )
    model = build_next_item_model(
        "sasrec", split.n_items, {"embedding_dim": 32, "dropout": 0.1, "max_length": 10}, seed=0
    )
    config = SequentialTrainerConfig(
        max_epochs=20, batch_size=64, learning_rate=5e-3, patience=5, num_threads=1,
        progress=False, seed=0, embedding_optimizer="sparse_adam", grad_clip_norm=5.0,
    )  # fmt: skip
    trainer = SequentialTrainer(model, split, config)
    assert isinstance(trainer.optimizer, RowWiseOptimizer)
    result = trainer.fit()
    assert result.best_valid["hit@5"] > 0.9


def test_clipping_sparse_gradients_matches_dense_clipping() -> None:
    weight = torch.nn.Parameter(torch.randn(5, 3))
    bias = torch.nn.Parameter(torch.randn(3))
    ids = torch.tensor([1, 1, 4])
    grads = []
    for sparse in (True, False):
        weight.grad, bias.grad = None, None
        rows = torch.nn.functional.embedding(ids, weight, sparse=sparse)
        ((rows * 3.0).sum() + (bias * 2.0).sum()).backward()
        if sparse:
            clip_gradients([weight, bias], 1.0)
            assert weight.grad is not None
            grads.append((weight.grad.to_dense(), bias.grad.clone()))
        else:
            torch.nn.utils.clip_grad_norm_([weight, bias], 1.0)
            assert weight.grad is not None and bias.grad is not None
            grads.append((weight.grad.clone(), bias.grad.clone()))
    assert torch.allclose(grads[0][0], grads[1][0]) and torch.allclose(grads[0][1], grads[1][1])


def test_leanrec_train_takes_the_embedding_optimizer_flag(tmp_path: Path) -> None:
    from leanrec.cli import main

    run_dir = tmp_path / "run"
    argv = ["train", "--model", "mf", "--epochs", "1", "--run-dir", str(run_dir)]
    assert main([*argv, "--embedding-optimizer", "lazy_adam", "--num_threads", "1"]) == 0
    saved = json.loads((run_dir / "config.json").read_text())
    assert saved["trainer"]["embedding_optimizer"] == "lazy_adam"


def test_checkpoint_without_the_option_counts_as_dense_adam() -> None:
    from leanrec.train.row_optim import check_resumed_embedding_optimizer

    check_resumed_embedding_optimizer(
        {"config": {"embedding_optimizer": "sparse_adam"}}, "sparse_adam"
    )
    check_resumed_embedding_optimizer({"config": {}}, "dense_adam")  # written before the option
    with pytest.raises(ValueError, match=r"'dense_adam'.*'sparse_adam'"):
        check_resumed_embedding_optimizer({"config": {}}, "sparse_adam")


def test_each_trainer_defaults_to_the_optimiser_its_figures_chose() -> None:
    """BPR trains its tables row-wise by default (dense Adam's metrics on every BPR figure);
    the CTR and sequential trainers stay dense (docs/design/sparse-optimizers.md)."""
    assert TrainerConfig().embedding_optimizer == "sparse_adam"
    assert CTRTrainerConfig().embedding_optimizer == "dense_adam"
    assert SequentialTrainerConfig().embedding_optimizer == "dense_adam"
