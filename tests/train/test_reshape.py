"""Optimiser state across a change of architecture: after grow / shrink the moved Adam steps
exactly as a freshly built Adam loaded with the moved state; a stream trainer re-shaped
mid-stream holds its model's parameters in a fresh trainer's order and keeps learning."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from leanrec.data.events import Chunk
from leanrec.data.synthetic_stream import make_synthetic_stream
from leanrec.evaluate.prequential import PrequentialRecord
from leanrec.models.expandable import (
    ArchitectureChange,
    ExpandableMLP,
    ShapeLimits,
    expandable_tower,
    make_expandable,
)
from leanrec.models.stream import build_stream_model
from leanrec.train.reshape import carry_tensor, move_optimizer_state, reshape_stream_trainer
from leanrec.train.stream import StreamTrainer, StreamTrainerConfig, run_stream


class _Net(nn.Module):
    """12 -> 10 -> 8 ReLU tower with a 1-logit head."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.tower = ExpandableMLP(12, [10, 8], limits=ShapeLimits(min_width=1))
        self.head = nn.Linear(8, 1)
        self.tower.attach_head(self.head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.head(self.tower(x)).squeeze(-1)
        return out


def _step(net: _Net, optimizer: torch.optim.Optimizer, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    x, y = torch.randn(32, 12, generator=g), torch.randn(32, generator=g)
    optimizer.zero_grad()
    (net(x) - y).pow(2).mean().backward()
    optimizer.step()


def _trained() -> tuple[_Net, torch.optim.Adam]:
    net = _Net()
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
    for seed in range(5):
        _step(net, optimizer, seed)
    return net, optimizer


def test_carry_tensor_places_entries_by_hand() -> None:
    old = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    # keep columns 0 and 2 at new positions 0 and 1, rows whole, one new column at 2
    index = (None, (torch.tensor([0, 2]), torch.tensor([0, 1])))
    assert torch.equal(
        carry_tensor(old, (2, 3), index), torch.tensor([[1.0, 3.0, 0.0], [4.0, 6.0, 0.0]])
    )
    # "mean": the new column holds the mean of the carried entries (1 + 3 + 4 + 6) / 4 = 3.5
    assert torch.equal(
        carry_tensor(old, (2, 3), index, "mean"),
        torch.tensor([[1.0, 3.0, 3.5], [4.0, 6.0, 3.5]]),
    )


def test_new_second_moments_can_start_at_the_kept_entries_mean() -> None:
    net, optimizer = _trained()
    w0 = net.tower.linears[0].weight
    m, v, step = _moments(optimizer, w0)
    changes = net.tower.grow(0, 2)
    move_optimizer_state(optimizer, changes, list(net.parameters()), new_second_moment="mean")
    state = optimizer.state[net.tower.linears[0].weight]
    assert torch.equal(state["exp_avg_sq"][:10], v)
    assert torch.allclose(state["exp_avg_sq"][10:], v.mean().expand(2, 12))
    assert torch.equal(state["exp_avg"][10:], torch.zeros(2, 12))  # first moments: zero
    assert torch.equal(state["exp_avg"][:10], m) and torch.equal(state["step"], step)


def _moments(optimizer: torch.optim.Adam, p: nn.Parameter) -> tuple[torch.Tensor, ...]:
    state = optimizer.state[p]
    return state["exp_avg"].clone(), state["exp_avg_sq"].clone(), state["step"].clone()


def _fresh_adam_with(
    net: _Net, state: dict[nn.Parameter, tuple[torch.Tensor, ...]]
) -> torch.optim.Adam:
    fresh = torch.optim.Adam(net.parameters(), lr=1e-2)
    for p, (m, v, step) in state.items():
        fresh.state[p] = {"step": step, "exp_avg": m, "exp_avg_sq": v}
    return fresh


def test_grow_then_step_equals_a_fresh_adam_with_the_moved_state() -> None:
    net, optimizer = _trained()
    reference = copy.deepcopy(net)
    w0, b0 = net.tower.linears[0].weight, net.tower.linears[0].bias
    w1, b1 = net.tower.linears[1].weight, net.tower.linears[1].bias
    old = {name: _moments(optimizer, p) for name, p in (("w0", w0), ("b0", b0), ("w1", w1))}
    old["b1"] = _moments(optimizer, b1)
    old["head_w"], old["head_b"] = (
        _moments(optimizer, net.head.weight),
        _moments(optimizer, net.head.bias),
    )

    changes = net.tower.grow(0, 3, torch.Generator().manual_seed(7))
    move_optimizer_state(optimizer, changes, list(net.parameters()))
    reference.tower.grow(0, 3, torch.Generator().manual_seed(7))

    def pad(t: torch.Tensor, dim: int) -> torch.Tensor:  # 3 zero entries for the new units
        shape = list(t.shape)
        shape[dim] = 3
        return torch.cat([t, torch.zeros(shape)], dim=dim)

    moved = {
        reference.tower.linears[0].weight: (*(pad(t, 0) for t in old["w0"][:2]), old["w0"][2]),
        reference.tower.linears[0].bias: (*(pad(t, 0) for t in old["b0"][:2]), old["b0"][2]),
        reference.tower.linears[1].weight: (*(pad(t, 1) for t in old["w1"][:2]), old["w1"][2]),
        reference.tower.linears[1].bias: old["b1"],
        reference.head.weight: old["head_w"],
        reference.head.bias: old["head_b"],
    }
    fresh = _fresh_adam_with(reference, moved)
    for p, (m, v, _) in moved.items():  # the helper put the same state on the same positions
        q = dict(zip(reference.parameters(), net.parameters(), strict=True))[p]
        assert torch.equal(optimizer.state[q]["exp_avg"], m)
        assert torch.equal(optimizer.state[q]["exp_avg_sq"], v)
    _step(net, optimizer, 99)
    _step(reference, fresh, 99)
    for a, b in zip(net.parameters(), reference.parameters(), strict=True):
        assert torch.equal(a, b)


def test_shrink_then_step_equals_a_fresh_adam_with_the_moved_state() -> None:
    net, optimizer = _trained()
    reference = copy.deepcopy(net)
    kept = torch.sort(torch.argsort(net.tower.saliency(1), descending=True, stable=True)[:5]).values
    w1, b1 = net.tower.linears[1].weight, net.tower.linears[1].bias
    old_w1, old_b1 = _moments(optimizer, w1), _moments(optimizer, b1)
    old_head = _moments(optimizer, net.head.weight)
    changes = net.tower.shrink(1, 3)
    move_optimizer_state(optimizer, changes, list(net.parameters()))
    reference.tower.shrink(1, 3)
    moved = {
        reference.tower.linears[0].weight: _moments(optimizer, net.tower.linears[0].weight),
        reference.tower.linears[0].bias: _moments(optimizer, net.tower.linears[0].bias),
        reference.tower.linears[1].weight: (old_w1[0][kept], old_w1[1][kept], old_w1[2]),
        reference.tower.linears[1].bias: (old_b1[0][kept], old_b1[1][kept], old_b1[2]),
        reference.head.weight: (old_head[0][:, kept], old_head[1][:, kept], old_head[2]),
        reference.head.bias: _moments(optimizer, net.head.bias),
    }
    fresh = _fresh_adam_with(reference, moved)
    _step(net, optimizer, 99)
    _step(reference, fresh, 99)
    for a, b in zip(net.parameters(), reference.parameters(), strict=True):
        assert torch.equal(a, b)


def test_added_and_merged_parameters_start_afresh_removed_ones_leave() -> None:
    net, optimizer = _trained()
    removed = list(net.tower.linears[1].parameters())
    changes = net.tower.add_layer(2)
    changes += net.tower.remove_layer(1)
    move_optimizer_state(optimizer, changes)  # in place: new ones appended
    held = [p for g in optimizer.param_groups for p in g["params"]]
    assert {id(p) for p in held} == {id(p) for p in net.parameters()}
    assert not any(id(p) in {id(q) for q in removed} for p in optimizer.state)
    merged = net.tower.linears[1].weight  # the added identity layer, now reading layer 0
    assert merged not in optimizer.state
    assert net.tower.linears[0].weight in optimizer.state  # untouched: state kept
    _step(net, optimizer, 99)
    assert all(bool(torch.isfinite(p).all()) for p in net.parameters())


@pytest.mark.parametrize("table_optimizer", ["adam", "row_adagrad"])
def test_stream_trainer_reshaped_mid_stream(table_optimizer: str, one_torch_thread: None) -> None:
    stream = make_synthetic_stream(3000, n_users=200, n_items=100, seed=0)
    plan = stream.plan(size=500, warmup_fraction=0.2)

    def build() -> StreamTrainer:
        model = build_stream_model("deepfm", embedding_dim=8, seed=0, mlp_dims=(32, 16))
        make_expandable(model)
        config = StreamTrainerConfig(table_optimizer=table_optimizer)  # type: ignore[arg-type]
        return StreamTrainer(model, config)

    trainer = build()
    applied = []

    def reshape(chunk: Chunk, record: PrequentialRecord) -> None:
        if chunk.index == 2:
            change = ArchitectureChange((+16, -8), depth_delta=+1)
            applied.append(reshape_stream_trainer(trainer, change, torch.Generator()))

    summary = run_stream(stream, plan, trainer, on_chunk_end=reshape).summary()
    assert applied and applied[0].widths_after == [48, 16, 16]
    assert summary["total"]["auc"] is not None and summary["total"]["auc"] > 0.5
    params = trainer.dense_optimizer.param_groups[0]["params"]
    assert [id(p) for p in params[: len(trainer.model.dense_parameters())]] == [
        id(p) for p in trainer.model.dense_parameters()
    ]
    # the trainer's state loads into a trainer built on a model of the same shape
    tower = expandable_tower(trainer.model)
    assert tower is not None
    other = build()
    make_expandable(other.model, tower.spec())
    other = StreamTrainer(other.model, trainer.config)
    other.load_state_dict(trainer.state_dict())
    for a, b in zip(other.model.parameters(), trainer.model.parameters(), strict=True):
        assert torch.equal(a, b)
    assert np.isfinite(trainer.last_losses).all()  # type: ignore[arg-type]
