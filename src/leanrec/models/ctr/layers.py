"""Building blocks of the CTR models: activations (incl. Dice), MLP, FM and CIN.

Every block works on embedded fields ``(B, m, d)`` (``m`` fields of width ``d``) or on flat
vectors ``(B, width)``; none of them touches IDs or embedding tables.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

ACTIVATIONS = ("relu", "prelu", "dice", "sigmoid", "tanh", "leaky_relu", "identity")
"""Names accepted by :func:`activation_layer`."""


class Dice(nn.Module):
    """Dice activation (DIN, Zhou et al. KDD 2018, Eq. 8-9).

    ``f(s) = p(s) · s + (1 - p(s)) · α · s`` with ``p(s) = σ((s - E[s]) / sqrt(Var[s] + ε))``:
    a PReLU whose rectification point follows the batch statistics of each unit (a batch norm
    without affine parameters; running estimates in eval mode).

    Args:
        width: number of units (last axis of the input).
        eps: ``ε`` of the normalisation (DIN's code and DeepCTR use 1e-8; 1e-9 in the paper).

    Shapes: input ``(..., width)`` -> output of the same shape.
    """

    def __init__(self, width: int, eps: float = 1e-8) -> None:
        super().__init__()
        self.norm = nn.BatchNorm1d(width, eps=eps, affine=False)
        self.alpha = nn.Parameter(torch.zeros(width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(-1, x.shape[-1])
        if self.training and flat.shape[0] < 2:
            # batch statistics of a single row are undefined: fall back to the running ones
            normed = F.batch_norm(
                flat, self.norm.running_mean, self.norm.running_var, eps=self.norm.eps
            )
        else:
            normed = self.norm(flat)
        p = torch.sigmoid(normed)
        out = p * flat + (1.0 - p) * self.alpha * flat
        return out.reshape(x.shape)


def activation_layer(name: str, width: int) -> nn.Module:
    """The activation ``name`` (one of :data:`ACTIVATIONS`) for a layer of ``width`` units."""
    key = name.lower()
    if key == "relu":
        return nn.ReLU()
    if key == "prelu":
        return nn.PReLU(width, init=0.25)
    if key == "dice":
        return Dice(width)
    if key == "sigmoid":
        return nn.Sigmoid()
    if key == "tanh":
        return nn.Tanh()
    if key == "leaky_relu":
        return nn.LeakyReLU()
    if key in ("identity", "linear", "none"):
        return nn.Identity()
    raise ValueError(f"unknown activation {name!r}; known: {list(ACTIVATIONS)}")


class MLP(nn.Module):
    """``Linear -> activation -> dropout`` per hidden width, optionally a final ``Linear``.

    Args:
        input_dim: width of the input vector.
        hidden_dims: widths of the hidden layers (may be empty: then only ``output_dim`` acts).
        activation: one of :data:`ACTIVATIONS`.
        dropout: dropout probability after every hidden layer.
        output_dim: width of a final linear layer without activation (None: no final layer).

    Shapes: ``(..., input_dim)`` -> ``(..., output_dim or hidden_dims[-1] or input_dim)``.
    """

    def __init__(
        self,
        input_dim: int,
        hidden_dims: Sequence[int],
        activation: str = "relu",
        dropout: float = 0.0,
        output_dim: int | None = None,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = input_dim
        for hidden in hidden_dims:
            layers += [nn.Linear(width, hidden), activation_layer(activation, hidden)]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = hidden
        if output_dim is not None:
            layers.append(nn.Linear(width, output_dim))
            width = output_dim
        self.layers = nn.Sequential(*layers)
        self.output_width = width
        for module in self.layers:
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)  # type: ignore[no-any-return]


def fm_second_order(fields: torch.Tensor) -> torch.Tensor:
    """Factorization-machine pairwise term ``Σ_{i<j} <v_i, v_j>`` (Rendle 2010, Eq. 5 trick).

    Computed in ``O(m d)`` as ``½ Σ_k [(Σ_i v_ik)² - Σ_i v_ik²]``.

    Args:
        fields: ``(B, m, d)`` field vectors ``v_i``.

    Returns:
        ``(B,)``.
    """
    square_of_sum = fields.sum(dim=1).pow(2)
    sum_of_square = fields.pow(2).sum(dim=1)
    return 0.5 * (square_of_sum - sum_of_square).sum(dim=1)


class CIN(nn.Module):
    """Compressed Interaction Network (xDeepFM, Lian et al. KDD 2018, Eq. 6).

    Layer ``k`` builds ``H_k`` feature maps from the outer interactions of the previous layer
    ``X^{k-1} (B, H_{k-1}, d)`` with the input fields ``X^0 (B, m, d)``::

        X^k_h = σ( Σ_i Σ_j W^{k,h}_{ij} (X^{k-1}_i ∘ X^0_j) )        (∘: element-wise over d)

    and every layer's maps are sum-pooled over ``d`` into the output ``p^k (B, H_k)``. With
    ``split_half`` (as in the authors' code and DeepCTR) the maps of every layer but the last are
    split in two: one half feeds the next layer, the other half goes to the output.

    Args:
        num_fields: ``m``.
        layer_sizes: ``H_1, H_2, ...`` (even numbers when ``split_half``, except the last).
        activation: ``σ``; the paper uses the identity.
        split_half: see above.

    Shapes: ``(B, m, d)`` -> ``(B, output_dim)``.
    """

    def __init__(
        self,
        num_fields: int,
        layer_sizes: Sequence[int],
        activation: str = "identity",
        split_half: bool = True,
    ) -> None:
        super().__init__()
        if not layer_sizes:
            raise ValueError("CIN needs at least one layer")
        self.num_fields = num_fields
        self.split_half = split_half
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        self.activations = nn.ModuleList()
        self.next_widths: list[int] = []
        previous = num_fields
        output_dim = 0
        for k, size in enumerate(layer_sizes):
            last = k == len(layer_sizes) - 1
            if split_half and not last and size % 2:
                raise ValueError(f"CIN layer sizes must be even with split_half, got {size}")
            weight = torch.empty(size, previous, num_fields)
            # W^{k,h} as a 1x1 convolution over the (H_{k-1} * m) interaction channels
            nn.init.xavier_uniform_(weight.view(size, previous * num_fields))
            self.weights.append(nn.Parameter(weight))
            self.biases.append(nn.Parameter(torch.zeros(size)))
            self.activations.append(activation_layer(activation, size))
            kept = size // 2 if split_half and not last else size
            self.next_widths.append(kept)
            output_dim += size - kept if split_half and not last else size
            previous = kept
        self.output_dim = output_dim

    def forward(self, fields: torch.Tensor) -> torch.Tensor:
        x0 = fields
        hidden = fields
        pooled = []
        for weight, bias, act, kept in zip(
            self.weights, self.biases, self.activations, self.next_widths
        ):
            # z_{b,(i,j),d} = X^{k-1}_{b,i,d} X^0_{b,j,d};  X^k_{b,h,d} = Σ_ij W_{h,i,j} z_{b,ij,d},
            # a 1x1 convolution over the interaction channels (fastest on CPU of the forms tried)
            b, h_prev, d = hidden.shape
            z = (hidden[:, :, None, :] * x0[:, None, :, :]).reshape(b, h_prev * self.num_fields, d)
            out = F.conv1d(z, weight.reshape(weight.shape[0], -1, 1), bias)
            # activation acts per feature map h: put h last
            out = act(out.transpose(1, 2)).transpose(1, 2)
            if self.split_half and kept < out.shape[1]:
                hidden, direct = out[:, :kept], out[:, kept:]
            else:
                hidden, direct = out, out
            pooled.append(direct.sum(dim=2))
        return torch.cat(pooled, dim=1)


__all__ = ["ACTIVATIONS", "CIN", "MLP", "Dice", "activation_layer", "fm_second_order"]
