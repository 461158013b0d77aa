"""AMEIR Stage 3: the aggregation MLP as a one-shot model with sliced weights (Sec. 2.3, Step 3).

Every layer ``l`` of :class:`SlicedMLP` pre-allocates a maximum-size weight (``K^c_0 x K^c_0``
by default) and bias; a child MLP with hidden sizes ``h_in -> h_out`` uses the sub-matrix
``W[:h_out, :h_in]`` and ``b[:h_out]`` (Eq. 2: ``h_l = Act_l(W_l h_{l-1} + b_l)``), so all
children share weights and a step only trains the slice it used. :meth:`SlicedMLP.derive`
copies one child out as the model's
:class:`~leanrec.models.ctr.ameir.mlp.MLP` (the derived model is initialised with the one-shot
weights, Sec. 2.3 "Derivation").

Activations come from :data:`~leanrec.models.ctr.ameir.architecture.MLP_ACTIVATIONS`: ReLU, Swish
(``x σ(x)``), identity and Dice (DIN). Dice has per-unit parameters ``α`` and batch-norm
running statistics; here they are max-width per layer and sliced like the weights.

Batch-norm statistics under slicing: each layer keeps one running mean / variance of
``max_width`` entries shared by all children. A training step at width ``h`` normalises with the
batch statistics and updates only entries ``[:h]`` (momentum 0.1, unbiased variance, as
``nn.BatchNorm1d``); entries ``[h:]`` are untouched. Eval mode normalises with entries ``[:h]``.
Since unit ``j`` sees different inputs in different children, the stored statistics are a
running mixture over the sampled children — the usual one-shot compromise. When ranking
children by a validation metric, re-estimating them per child (:meth:`SlicedMLP.reset_running_stats`
then a few training-mode forwards under ``torch.no_grad()``) removes that bias; the derived
:class:`~leanrec.models.ctr.ameir.mlp.MLP` copies the sliced statistics as they are.

Example:
    >>> mlp = SlicedMLP(input_dim=100, n_layers=2)
    >>> x = torch.randn(32, 100)
    >>> mlp(x, (60, 30), ("relu", "dice")).shape
    torch.Size([32, 30])
    >>> child = mlp.eval().derive((60, 30), ("relu", "dice"))
    >>> torch.equal(child(x), mlp(x, (60, 30), ("relu", "dice")))
    True
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from leanrec.models.ctr.ameir.mlp import DICE_EPS, MLP, check_mlp
from leanrec.models.ctr.layers import Dice

__all__ = ["BN_MOMENTUM", "SlicedMLP"]

BN_MOMENTUM = 0.1
"""Momentum of the running statistics (the ``nn.BatchNorm1d`` default)."""


class _SlicedDice(nn.Module):
    """Dice with max-width ``α`` and running statistics, used on the first ``width`` units.

    See the module docstring for how the running statistics are shared and updated.
    """

    def __init__(self, max_width: int) -> None:
        super().__init__()
        self.alpha = nn.Parameter(torch.zeros(max_width))
        self.register_buffer("running_mean", torch.zeros(max_width))
        self.register_buffer("running_var", torch.ones(max_width))
        self.running_mean: torch.Tensor
        self.running_var: torch.Tensor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        width = x.shape[-1]
        flat = x.reshape(-1, width)
        # prefix slices are views: a training-mode batch_norm updates [:width] in place
        use_batch = self.training and flat.shape[0] >= 2
        normed = F.batch_norm(
            flat,
            self.running_mean[:width],
            self.running_var[:width],
            training=use_batch,
            momentum=BN_MOMENTUM,
            eps=DICE_EPS,
        )
        p = torch.sigmoid(normed)
        out = p * flat + (1.0 - p) * self.alpha[:width] * flat
        return out.reshape(x.shape)


class SlicedMLP(nn.Module):
    """One-shot aggregation MLP of Step 3: max-size weights sliced per child (Sec. 2.3).

    Layer ``l`` holds ``W_l (max_width, in_l)`` with ``in_0 = input_dim`` and
    ``in_l = max_width`` after, ``b_l (max_width,)`` and a Dice state of ``max_width`` units. A
    child with hidden sizes ``widths`` runs ``h_l = Act_l(W_l[:h_l, :h_{l-1}] h_{l-1} +
    b_l[:h_l])`` with ``h_{-1} = input_dim``; a child may use fewer than ``n_layers`` layers (the
    first ones). Gradients reach only the slices used. Weights start Xavier-uniform over the
    full max matrix (as :class:`leanrec.models.ctr.layers.MLP`), biases at 0.

    Args:
        input_dim: ``K^c_0``, width of ``h^c_0``.
        n_layers: ``L_c``, most hidden layers a child can have.
        max_width: largest hidden size (default ``input_dim``: the paper's ``K^c_0 x K^c_0``).
        dropout: dropout probability after every layer.
        generator: RNG for the weight initialisation.

    Shapes: ``x (..., input_dim)`` -> ``(..., widths[-1])`` (``input_dim`` for no layers).
    """

    def __init__(
        self,
        input_dim: int,
        n_layers: int,
        max_width: int | None = None,
        dropout: float = 0.0,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        if input_dim < 1 or n_layers < 0:
            raise ValueError(f"need input_dim >= 1 and n_layers >= 0, got {input_dim}, {n_layers}")
        self.input_dim = input_dim
        self.n_layers = n_layers
        self.max_width = input_dim if max_width is None else max_width
        if self.max_width < 1:
            raise ValueError(f"max_width must be >= 1, got {self.max_width}")
        self.dropout_p = dropout
        self.dropout = nn.Dropout(dropout)
        self.weights = nn.ParameterList()
        """``W_l (max_width, in_l)`` per layer."""
        self.biases = nn.ParameterList()
        """``b_l (max_width,)`` per layer."""
        self.dice = nn.ModuleList()
        previous = input_dim
        for _ in range(n_layers):
            weight = torch.empty(self.max_width, previous)
            nn.init.xavier_uniform_(weight, generator=generator)
            self.weights.append(nn.Parameter(weight))
            self.biases.append(nn.Parameter(torch.zeros(self.max_width)))
            self.dice.append(_SlicedDice(self.max_width))
            previous = self.max_width

    def check(self, widths: Sequence[int], activations: Sequence[str]) -> None:
        """Raise ``ValueError`` unless ``(widths, activations)`` is a child of this MLP."""
        check_mlp(widths, activations, self.max_width, self.n_layers)

    def output_dim(self, widths: Sequence[int]) -> int:
        """Width of the output of the child with hidden sizes ``widths``."""
        return int(widths[-1]) if len(widths) else self.input_dim

    def forward(
        self, x: torch.Tensor, widths: Sequence[int], activations: Sequence[str]
    ) -> torch.Tensor:
        """Run the child MLP ``(widths, activations)`` on ``x (..., input_dim)``."""
        self.check(widths, activations)
        if x.shape[-1] != self.input_dim:
            raise ValueError(f"input has width {x.shape[-1]}, not {self.input_dim}")
        previous = self.input_dim
        for layer, (width, name) in enumerate(zip(widths, activations)):
            weight = self.weights[layer][:width, :previous]
            x = F.linear(x, weight, self.biases[layer][:width])
            if name == "relu":
                x = F.relu(x)
            elif name == "swish":
                x = F.silu(x)
            elif name == "dice":
                x = self.dice[layer](x)
            x = self.dropout(x)
            previous = width
        return x

    @torch.no_grad()
    def derive(self, widths: Sequence[int], activations: Sequence[str]) -> MLP:
        """The child ``(widths, activations)`` as a plain :class:`MLP` with copied weights.

        The copy holds its own tensors (training it leaves the one-shot weights alone), the
        sliced Dice ``α`` and running statistics, the same dropout and the same train / eval
        mode, so its outputs equal :meth:`forward` in eval mode.
        """
        self.check(widths, activations)
        device = self.weights[0].device if self.n_layers else torch.device("cpu")
        mlp = MLP(self.input_dim, widths, activations, self.dropout_p).to(device)
        previous = self.input_dim
        for layer, (width, name) in enumerate(zip(widths, activations)):
            linear = mlp.linears[layer]
            assert isinstance(linear, nn.Linear)
            linear.weight.copy_(self.weights[layer][:width, :previous])
            linear.bias.copy_(self.biases[layer][:width])
            if name == "dice":
                source = self.dice[layer]
                target = mlp.activations[layer]
                assert isinstance(source, _SlicedDice) and isinstance(target, Dice)
                assert target.norm.running_mean is not None and target.norm.running_var is not None
                target.alpha.copy_(source.alpha[:width])
                target.norm.running_mean.copy_(source.running_mean[:width])
                target.norm.running_var.copy_(source.running_var[:width])
            previous = width
        return mlp.train(self.training)

    def reset_running_stats(self) -> None:
        """Reset every Dice running mean to 0 and variance to 1 (e.g. to re-estimate them for one
        child before evaluating it)."""
        for dice in self.dice:
            assert isinstance(dice, _SlicedDice)
            dice.running_mean.zero_()
            dice.running_var.fill_(1.0)
