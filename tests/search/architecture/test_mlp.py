"""AMEIR Stage 3: the sliced one-shot MLP, its derived plain MLP and parameter counts."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from leanrec.models.ctr.ameir.architecture import MLP_ACTIVATIONS, Architecture
from leanrec.models.ctr.ameir.mlp import MLP, parameter_count
from leanrec.models.ctr.layers import Dice
from leanrec.search.architecture.mlp import SlicedMLP

K0 = 10


def _mlp(n_layers: int = 3, seed: int = 0, **kwargs: object) -> SlicedMLP:
    return SlicedMLP(K0, n_layers, generator=torch.Generator().manual_seed(seed), **kwargs)  # type: ignore[arg-type]


def _x(batch: int = 16, seed: int = 1) -> torch.Tensor:
    return torch.randn(batch, K0, generator=torch.Generator().manual_seed(seed))


def _train_a_little(mlp: SlicedMLP) -> None:
    """A few SGD steps over several children so Dice α and running statistics move."""
    optimizer = torch.optim.SGD(mlp.parameters(), lr=0.1)
    children = [((8, 6, 3), ("dice", "dice", "dice")), ((10, 4), ("swish", "dice"))]
    for step in range(4):
        widths, activations = children[step % 2]
        optimizer.zero_grad()
        mlp(_x(seed=10 + step), widths, activations).pow(2).mean().backward()
        optimizer.step()


def test_sliced_equals_plain_mlp_from_sliced_weights() -> None:
    mlp = _mlp()
    _train_a_little(mlp)
    widths, activations = (7, 5, 5), ("relu", "swish", "dice")
    x = _x()
    # hand-built plain network from W[:h_out, :h_in]
    plain: list[nn.Module] = []
    previous = K0
    for layer, (width, name) in enumerate(zip(widths, activations)):
        linear = nn.Linear(previous, width)
        with torch.no_grad():
            linear.weight.copy_(mlp.weights[layer][:width, :previous])
            linear.bias.copy_(mlp.biases[layer][:width])
        plain.append(linear)
        if name == "dice":
            dice = Dice(width)
            with torch.no_grad():
                dice.alpha.copy_(mlp.dice[layer].alpha[:width])
                dice.norm.running_mean.copy_(mlp.dice[layer].running_mean[:width])
                dice.norm.running_var.copy_(mlp.dice[layer].running_var[:width])
            plain.append(dice)
        else:
            plain.append({"relu": nn.ReLU(), "swish": nn.SiLU()}[name])
        previous = width
    reference = nn.Sequential(*plain)
    for training in (True, False):  # batch statistics, then running statistics
        mlp.train(training)
        reference.train(training)
        with torch.no_grad():
            assert torch.allclose(mlp(x, widths, activations), reference(x), atol=1e-6)
    assert mlp.output_dim(widths) == 5


@pytest.mark.parametrize("activation", MLP_ACTIVATIONS)
def test_derive_matches_exactly(activation: str) -> None:
    mlp = _mlp(dropout=0.3)
    _train_a_little(mlp)
    widths, activations = (9, 6), (activation, activation)
    mlp.eval()
    child = mlp.derive(widths, activations)
    assert isinstance(child, MLP) and not child.training
    x = _x()
    assert torch.equal(child(x), mlp(x, widths, activations))
    assert child.output_dim == mlp.output_dim(widths) == 6
    # the copy owns its tensors
    with torch.no_grad():
        child.linears[0].weight.add_(1.0)
    assert not torch.equal(child(x), mlp(x, widths, activations))
    assert child.parameter_count() == parameter_count(K0, widths, activations)


def test_parameter_count() -> None:
    assert parameter_count(10, (6, 3), ("relu", "identity")) == 10 * 6 + 6 + 6 * 3 + 3
    assert parameter_count(10, (6, 3), ("dice", "dice")) == 10 * 6 + 6 + 6 * 3 + 3 + 6 + 3
    assert parameter_count(10, (), ()) == 0
    assert MLP(10, (6, 3), ("dice", "swish")).parameter_count() == 10 * 6 + 6 + 6 * 3 + 3 + 6


def test_gradients_touch_only_the_slice() -> None:
    mlp = _mlp()
    widths = (6, 4, 2)
    mlp(_x(), widths, ("dice", "relu", "swish")).sum().backward()
    previous = K0
    for layer, width in enumerate(widths):
        grad = mlp.weights[layer].grad
        assert grad is not None
        inside = torch.zeros_like(grad, dtype=torch.bool)
        inside[:width, :previous] = True
        assert torch.all(grad[~inside] == 0)
        assert grad[inside].abs().sum() > 0
        bias_grad = mlp.biases[layer].grad
        assert bias_grad is not None and torch.all(bias_grad[width:] == 0)
        previous = width
    alpha_grad = mlp.dice[0].alpha.grad
    assert alpha_grad is not None and torch.all(alpha_grad[6:] == 0)


def test_dice_running_stats_update_only_the_slice() -> None:
    mlp = _mlp(n_layers=1)
    mlp(_x() * 3 + 1, (4,), ("dice",))
    mean, var = mlp.dice[0].running_mean, mlp.dice[0].running_var
    assert torch.all(mean[:4] != 0) and torch.all(var[:4] != 1)
    assert torch.all(mean[4:] == 0) and torch.all(var[4:] == 1)
    mlp.eval()
    before = mean.clone()
    mlp(_x(), (8,), ("dice",))
    assert torch.equal(mean, before)  # eval mode does not update
    mlp.reset_running_stats()
    assert torch.all(mean == 0) and torch.all(var == 1)


def test_fewer_layers_and_identity_child() -> None:
    mlp = _mlp()
    x = _x()
    assert mlp(x, (5,), ("identity",)).shape == (16, 5)
    assert torch.equal(mlp(x, (), ()), x)
    assert mlp.output_dim(()) == K0
    assert torch.equal(mlp.derive((), ())(x), x)


def test_architecture_ratios_run() -> None:
    arch = Architecture(mlp_widths=(0.5, 0.3), mlp_activations=("dice", "swish"))
    mlp = _mlp(n_layers=2)
    assert mlp(_x(), arch.mlp_dims(K0), arch.mlp_activations).shape == (16, 3)


def test_max_width_wider_than_input() -> None:
    mlp = SlicedMLP(K0, 2, max_width=16)
    assert mlp.weights[0].shape == (16, K0) and mlp.weights[1].shape == (16, 16)
    assert mlp(_x(), (16, 12), ("relu", "relu")).shape == (16, 12)


@pytest.mark.parametrize(
    ("widths", "activations", "message"),
    [
        ((4, 6), ("relu", "relu"), "non-increasing"),
        ((11,), ("relu",), r"in \[1, 10\]"),
        ((0,), ("relu",), r"in \[1, 10\]"),
        ((5, 4, 3, 2), ("relu",) * 4, "one-shot MLP has 3"),
        ((5, 4), ("relu",), "activations"),
        ((5,), ("gelu",), "unknown MLP activation"),
    ],
)
def test_invalid_children_raise(
    widths: tuple[int, ...], activations: tuple[str, ...], message: str
) -> None:
    mlp = _mlp()
    with pytest.raises(ValueError, match=message):
        mlp(_x(), widths, activations)
    with pytest.raises(ValueError, match=message):
        mlp.derive(widths, activations)


def test_wrong_input_width_raises() -> None:
    with pytest.raises(ValueError, match="input has width"):
        _mlp()(torch.randn(3, K0 + 1), (4,), ("relu",))
