"""Row-wise optimisers: hand-computed updates, untouched rows stay, state follows the rows."""

from __future__ import annotations

import math

import pytest
import torch

from leanrec.embeddings.growing import GrowingEmbedding
from leanrec.train.row_optim import RowOptimizer


def _table(values: list[list[float]], min_capacity: int = 4) -> GrowingEmbedding:
    weights = torch.tensor(values)
    table = GrowingEmbedding(len(values), weights.shape[1], min_capacity=min_capacity)
    table.allocate(torch.arange(len(values)), init=weights)
    return table


def test_sgd_moves_only_the_touched_rows() -> None:
    table = _table([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    optimizer = RowOptimizer(table, "sgd", learning_rate=0.5)
    optimizer.step(torch.tensor([0, 2]), torch.tensor([[2.0, -2.0], [4.0, 0.0]]))
    # row 0: (1, 2) - 0.5 (2, -2) = (0, 3); row 2: (5, 6) - 0.5 (4, 0) = (3, 6); row 1 stays
    assert table.weight[:3].tolist() == [[0.0, 3.0], [3.0, 4.0], [3.0, 6.0]]
    assert optimizer.nbytes() == 0


def test_rowwise_adagrad_by_hand() -> None:
    table = _table([[1.0, 1.0], [0.0, 0.0]])
    optimizer = RowOptimizer(table, "adagrad", learning_rate=1.0, eps=0.0)
    grad = torch.tensor([[2.0, 2.0]])
    optimizer.step(torch.tensor([0]), grad)
    # s = mean(4, 4) = 4, step = g / 2 = (1, 1)
    assert table.weight[0].tolist() == [0.0, 0.0]
    optimizer.step(torch.tensor([0]), grad)
    # s = 8, step = 2 / sqrt(8) = 0.70710...
    assert table.weight[0].tolist() == pytest.approx([-2 / math.sqrt(8)] * 2)
    assert optimizer.state["sum"][:2].tolist() == [8.0, 0.0]
    assert table.weight[1].tolist() == [0.0, 0.0]


def test_rowwise_rmsprop_by_hand() -> None:
    table = _table([[1.0, 1.0]])
    optimizer = RowOptimizer(table, "rmsprop", learning_rate=0.5, decay=0.75, eps=0.0)
    grad = torch.tensor([[2.0, 2.0]])
    optimizer.step(torch.tensor([0]), grad)
    # s = 0.25 * 4 = 1, step = 0.5 * 2 / 1 = 1
    assert table.weight[0].tolist() == [0.0, 0.0]
    optimizer.step(torch.tensor([0]), grad)
    # s = 0.75 * 1 + 0.25 * 4 = 1.75, step = 0.5 * 2 / sqrt(1.75) = 0.75593...
    assert table.weight[0].tolist() == pytest.approx([-1 / math.sqrt(1.75)] * 2)


def test_lazy_adam_counts_steps_per_row() -> None:
    table = _table([[0.0, 0.0], [0.0, 0.0]])
    optimizer = RowOptimizer(table, "adam", learning_rate=0.1, momentum=0.9, decay=0.99, eps=0.0)
    grad = torch.tensor([[2.0, -0.5]])
    # bias-corrected first step: m_hat = g, v_hat = g^2, so the step is lr * sign(g)
    optimizer.step(torch.tensor([0]), grad)
    assert table.weight[0].tolist() == pytest.approx([-0.1, 0.1])
    # same gradient again: m = 0.19 g, v = 0.0199 g^2, corrected by 0.19 and 0.0199: lr * sign
    # row 1 takes its first step now (its own count 1): lr * sign as well
    optimizer.step(torch.tensor([0, 1]), torch.cat([grad, grad]))
    assert table.weight[0].tolist() == pytest.approx([-0.2, 0.2])
    assert table.weight[1].tolist() == pytest.approx([-0.1, 0.1])
    assert optimizer.state["step"][:2].tolist() == [2.0, 1.0]


def test_state_follows_relayouts_and_resets() -> None:
    table = GrowingEmbedding(8, 2, min_capacity=2)
    table.allocate(torch.tensor([5, 6]))
    optimizer = RowOptimizer(table, "adagrad", learning_rate=0.1)
    optimizer.step(torch.tensor([0, 1]), torch.tensor([[1.0, 1.0], [3.0, 3.0]]))
    assert optimizer.state["sum"].tolist() == [1.0, 9.0]
    table.allocate(torch.tensor([0, 1, 2]))  # capacity 2 -> 8: the state grows with it
    assert optimizer.state["sum"].tolist() == [1.0, 9.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    table.free(torch.tensor([5, 0, 1, 2]))  # 1 used row of 8: compacts, ID 6 moves to row 0
    assert table.rows(torch.tensor([6])).tolist() == [0]
    assert optimizer.state["sum"].tolist() == [9.0, 0.0]
    optimizer.state["sum"][1] = 4.0
    table.allocate(torch.tensor([3]))  # a reused row starts afresh
    assert optimizer.state["sum"].tolist() == [9.0, 0.0]


def test_state_dict_round_trip_and_bad_rule() -> None:
    table = _table([[1.0, 1.0]])
    optimizer = RowOptimizer(table, "rmsprop", learning_rate=0.1)
    optimizer.step(torch.tensor([0]), torch.tensor([[1.0, 3.0]]))
    other = RowOptimizer(_table([[1.0, 1.0]]), "rmsprop", learning_rate=0.1)
    other.load_state_dict(optimizer.state_dict())
    assert torch.equal(other.state["sum"], optimizer.state["sum"])
    with pytest.raises(ValueError, match="not 'adam'"):
        RowOptimizer(_table([[1.0]]), "adam").load_state_dict(optimizer.state_dict())
    with pytest.raises(ValueError, match="rule must be one of"):
        RowOptimizer(table, "momentum")  # type: ignore[arg-type]


@pytest.mark.parametrize("rule", ["sgd", "adagrad", "rmsprop", "adam"])
def test_scale_steps_as_the_scaled_gradient(rule: str) -> None:
    """``step(rows, g, scale=s)`` is ``step(rows, s * g)``: the trainer hands over the gradient
    of a mean loss over ``s`` events, the rule must act on the summed one. Two steps, so the
    accumulators (fed s² mean(g²)) and the moments enter the second."""
    values = [[1.0, -1.0, 0.5], [0.0, 2.0, -2.0], [3.0, 0.0, 1.0]]
    scaled, summed = _table(values), _table(values)
    by_scale = RowOptimizer(scaled, rule, learning_rate=0.1)  # type: ignore[arg-type]
    by_sum = RowOptimizer(summed, rule, learning_rate=0.1)  # type: ignore[arg-type]
    rows = torch.tensor([2, 0])
    grads = [torch.tensor([[0.5, -1.0, 0.25], [1.0, 0.0, -0.5]]), torch.tensor([[0.1] * 3] * 2)]
    for grad in grads:
        by_scale.step(rows, grad, scale=8.0)
        by_sum.step(rows, grad * 8.0)
    assert torch.allclose(scaled.weight, summed.weight, rtol=1e-6, atol=1e-7)
    assert not torch.equal(scaled.weight[:3], torch.tensor(values))  # the rows did move
    assert scaled.weight[1].tolist() == values[1]  # row 1 was not touched
    for key, value in by_scale.state.items():
        assert torch.allclose(value, by_sum.state[key], rtol=1e-6), key
