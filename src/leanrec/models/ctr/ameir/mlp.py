"""AMEIR Stage 3 (Zhao et al., IJCAI 2021, Sec. 2.1, Eq. 2): the aggregation MLP of a searched
model, ``h_l = Act_l(W_l h_{l-1} + b_l)`` with per-layer hidden widths and activations.

Activations come from :data:`~leanrec.models.ctr.ameir.architecture.MLP_ACTIVATIONS`: ReLU,
Swish (``x σ(x)``), identity and Dice (DIN). The search's one-shot MLP
(:class:`leanrec.search.architecture.mlp.SlicedMLP`) slices max-size weights per child and
derives these :class:`MLP` s with its weights.

Example:
    >>> mlp = MLP(100, (60, 30), ("relu", "dice"))
    >>> mlp(torch.randn(32, 100)).shape
    torch.Size([32, 30])
    >>> mlp.parameter_count() == parameter_count(100, (60, 30), ("relu", "dice"))
    True
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
from torch import nn

from leanrec.models.ctr.ameir.architecture import MLP_ACTIVATIONS
from leanrec.models.ctr.layers import Dice

DICE_EPS = 1e-8
"""``ε`` of Dice's normalisation (as :class:`leanrec.models.ctr.layers.Dice`)."""


def check_mlp(
    widths: Sequence[int],
    activations: Sequence[str],
    max_width: int,
    max_layers: int | None = None,
) -> None:
    """Raise ``ValueError`` unless ``widths`` / ``activations`` describe a valid child MLP.

    Valid: as many activations as widths (at most ``max_layers``), every width an integer in
    ``[1, max_width]``, widths non-increasing (Sec. 2.2), activations from
    :data:`MLP_ACTIVATIONS`.
    """
    if len(widths) != len(activations):
        raise ValueError(f"{len(widths)} MLP widths but {len(activations)} activations")
    if max_layers is not None and len(widths) > max_layers:
        raise ValueError(f"{len(widths)} MLP layers requested, the one-shot MLP has {max_layers}")
    for width in widths:
        if int(width) != width or not 1 <= width <= max_width:
            raise ValueError(f"MLP width {width} is not an integer in [1, {max_width}]")
    if any(b > a for a, b in itertools.pairwise(widths)):
        raise ValueError(f"MLP widths must be non-increasing, got {tuple(widths)}")
    for name in activations:
        if name not in MLP_ACTIVATIONS:
            raise ValueError(
                f"unknown MLP activation {name!r}; known: {', '.join(MLP_ACTIVATIONS)}"
            )


def parameter_count(input_dim: int, widths: Sequence[int], activations: Sequence[str]) -> int:
    """Trainable parameters of the plain :class:`MLP` ``(input_dim, widths, activations)``.

    ``Σ_l (h_{l-1} h_l + h_l)`` plus ``h_l`` Dice ``α`` per Dice layer (its batch-norm
    statistics are buffers, not parameters).
    """
    check_mlp(widths, activations, max_width=max([input_dim, *widths]))
    total = 0
    previous = input_dim
    for width, name in zip(widths, activations):
        total += previous * width + width + (width if name == "dice" else 0)
        previous = width
    return total


def _activation_module(name: str, width: int) -> nn.Module:
    if name == "relu":
        return nn.ReLU()
    if name == "swish":
        return nn.SiLU()
    if name == "identity":
        return nn.Identity()
    if name == "dice":
        return Dice(width, eps=DICE_EPS)
    raise ValueError(f"unknown MLP activation {name!r}; known: {', '.join(MLP_ACTIVATIONS)}")


class MLP(nn.Module):
    """A fixed aggregation MLP: per layer ``Linear -> activation -> dropout`` (Eq. 2).

    Weights start Xavier-uniform, biases at 0, as the hand-designed baselines'
    :class:`leanrec.models.ctr.layers.MLP` and the search's ``SlicedMLP``: with PyTorch's default
    ``nn.Linear`` initialisation the same network trained from scratch on ML-1M CTR validated at
    AUC 0.7944 after 3 epochs against 0.7989 (DNN: 0.7993).

    Args:
        input_dim: ``K^c_0``.
        widths: hidden sizes in units, non-increasing (may be empty: the identity).
        activations: one of :data:`MLP_ACTIVATIONS` per layer.
        dropout: dropout probability after every layer.

    Shapes: ``(..., input_dim)`` -> ``(..., widths[-1])`` (``input_dim`` without layers).
    """

    def __init__(
        self,
        input_dim: int,
        widths: Sequence[int],
        activations: Sequence[str],
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        check_mlp(widths, activations, max_width=max([input_dim, *widths]))
        self.input_dim = input_dim
        self.widths = tuple(int(w) for w in widths)
        self.activation_names = tuple(activations)
        previous = input_dim
        self.linears = nn.ModuleList()
        self.activations = nn.ModuleList()
        for width, name in zip(self.widths, self.activation_names):
            linear = nn.Linear(previous, width)
            nn.init.xavier_uniform_(linear.weight)
            nn.init.zeros_(linear.bias)
            self.linears.append(linear)
            self.activations.append(_activation_module(name, width))
            previous = width
        self.dropout = nn.Dropout(dropout)
        self.output_dim = previous

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for linear, activation in zip(self.linears, self.activations):
            x = self.dropout(activation(linear(x)))
        return x

    def parameter_count(self) -> int:
        """Number of trainable parameters (equals :func:`parameter_count`)."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)
