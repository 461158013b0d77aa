"""Hidden layers whose widths and depth change between sessions: :class:`ExpandableMLP`.

An adaptive architecture re-shapes a recommender between the sessions of a stream: it grows a
hidden layer when the data asks for capacity, shrinks it when capacity is idle, and adds or
removes a layer. This module is the model side of that: the deep tower of a CTR model
(:class:`~leanrec.models.ctr.dnn.DeepTower` of DNN, Wide&Deep, DeepFM, xDeepFM) or NeuMF's MLP
is swapped for an :class:`ExpandableMLP` (:func:`make_expandable`) without touching those
models' code, and every change keeps what the network has learnt:

* **grow** (units added to layer ``k``): the old rows of ``W_k`` are kept; the new rows are
  drawn from ``N(0, (s · σ_xavier)²)`` with ``s = init_scale`` (0.1) and zero bias, and the next
  layer (or the model's output layer, the *head*) gets zero columns for them. The function is
  unchanged at the moment of growth (the new units' outputs are multiplied by zeros); the
  incoming weights are random, not zero, so the new units differ from each other and the
  outgoing columns receive a gradient ``δ · h_new`` at once (zero incoming *and* outgoing
  weights would be a saddle no gradient leaves). They are small so that the first Adam steps on
  the outgoing columns (about ``lr`` each, whatever the gradient's size) move the function by
  little while the new units find a use.
* **shrink** (units removed from layer ``k``): the units of lowest saliency go; the kept units'
  rows, biases, activation parameters and outgoing columns are exactly the old ones. The
  network after shrinking is the old one with the removed units' outgoing columns set to zero.
  Saliency (:meth:`ExpandableMLP.saliency`) is ``‖(w_j, b_j)‖₂ · ‖W_{k+1}[:, j]‖₂``: the
  product of the norms of unit ``j``'s incoming and outgoing weights. With ReLU, scaling a
  unit's incoming weights by ``α > 0`` and its outgoing ones by ``1/α`` leaves the function as
  it is; each norm alone changes with ``α``, the product does not. It bounds what removing the
  unit changes in the next layer's input per unit of input norm (``|h_j| ≤ ‖(w_j, b_j)‖ ·
  ‖(x, 1)‖`` for ReLU, Cauchy-Schwarz), needs no data, and costs one pass over the weights.
  Given a batch of inputs, ``E|h_j| · ‖W_{k+1}[:, j]‖₂`` replaces the bound by the measured
  activation (the mean size of what the unit sends on).
* **add a layer** at position ``p ≥ 1`` (after hidden layer ``p - 1``): a square layer of that
  width with ``W = I``, ``b = 0``. Its input is a ReLU output ``h ≥ 0``, so ``ReLU(I h + 0) = h``
  exactly: the function is unchanged bit for bit (ReLU and identity activations; for the other
  activations the layer is only near the identity). Position 0 is refused: the raw input can be
  negative and ``ReLU(x) ≠ x``.
* **remove a layer** ``k``: the affine maps on either side are composed, dropping the
  activation between them: ``W' = W_{k+1} W_k``, ``b' = W_{k+1} b_k + b_{k+1}`` (``W_{k+1}`` is
  the head's tower columns when ``k`` is the last layer). This is exact wherever layer ``k``'s
  units are all active (``W_k h + b_k ≥ 0``: the ReLU acted as the identity), hence the exact
  inverse of adding a layer, and otherwise the linear part of the network without that layer's
  rectification. The width of layer ``k`` disappears with it.

Limits (:class:`ShapeLimits`): widths 16..512, depth 1..3. :meth:`ExpandableMLP.grow` and the
other operations raise when asked to cross them; :func:`apply_change` clamps an
:class:`ArchitectureChange` to them and reports what it clamped (:class:`AppliedChange`).

Every operation returns the :class:`ParameterChange` list of what happened to each parameter
(kept positions, new, removed), so the optimiser's state can follow
(:func:`leanrec.train.reshape.move_optimizer_state`).

Counting: :meth:`ExpandableMLP.num_parameters` is the part a controller shapes: the hidden
layers' weights and biases, per-unit activation parameters (PReLU) and the head's columns that
read the tower (``head.out_features · widths[-1]``); the head's own bias and the model's other
columns stay out. :meth:`ExpandableMLP.nbytes` is the same parameters' bytes.

Example:
    >>> model = build_stream_model("deepfm", embedding_dim=16, seed=0, mlp_dims=(64, 32))
    >>> tower = make_expandable(model)
    >>> tower.widths
    [64, 32]
    >>> applied = apply_change(model, ArchitectureChange((+32, -16), depth_delta=+1))
    >>> tower.widths, applied.clamped
    ([96, 16, 16], False)
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from leanrec.models.ctr.base import CTRModel
from leanrec.models.ctr.dnn import DeepTower
from leanrec.models.ctr.layers import activation_layer
from leanrec.models.ncf import NeuMF

__all__ = [
    "EXPANDABLE_ACTIVATIONS",
    "AppliedChange",
    "ArchitectureChange",
    "ExpandableMLP",
    "ExpandableTower",
    "ParameterChange",
    "ShapeLimits",
    "apply_change",
    "expandable_tower",
    "make_expandable",
]

EXPANDABLE_ACTIVATIONS = ("relu", "leaky_relu", "prelu", "sigmoid", "tanh", "identity")
"""Activations an :class:`ExpandableMLP` can re-shape (Dice's batch statistics are not
supported). Adding a layer keeps the function exactly for ``relu`` and ``identity``."""


@dataclass(frozen=True)
class ShapeLimits:
    """The widths and depths a tower may reach."""

    min_width: int = 16
    """Fewest units of a hidden layer (shrinking stops here)."""
    max_width: int = 512
    """Most units of a hidden layer (growing stops here; the fixed-large tower's widest)."""
    min_depth: int = 1
    """Fewest hidden layers."""
    max_depth: int = 3
    """Most hidden layers (the fixed-large tower 512-256-128 has 3)."""

    def __post_init__(self) -> None:
        if not 1 <= self.min_width <= self.max_width or not 1 <= self.min_depth <= self.max_depth:
            raise ValueError(f"inconsistent limits {self}")


@dataclass(frozen=True)
class ParameterChange:
    """What one re-shaping did to one parameter, for the optimiser's state to follow.

    Attributes:
        old: the parameter before (None: a new parameter, e.g. of an added layer).
        new: the parameter after (None: removed with its layer).
        index: per dimension of ``new``, ``None`` when that dimension is carried over whole
            (same size), or ``(old_positions, new_positions)`` (int64 ``(n,)`` each): the
            entries carried over; every other position of ``new`` is new (state starts at
            zero). ``index=None`` altogether: nothing carries over (a merged layer's weight).
    """

    old: nn.Parameter | None
    new: nn.Parameter | None
    index: tuple[tuple[torch.Tensor, torch.Tensor] | None, ...] | None


def _positions(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``n`` positions kept in place."""
    same = torch.arange(n)
    return same, same


# ---------------------------------------------------------------------------------- the MLP
class ExpandableMLP(nn.Module):
    """``Linear -> activation [-> dropout]`` per hidden width, re-shapable between sessions.

    Laid out as the hidden part of :class:`~leanrec.models.ctr.layers.MLP` (one flat
    ``nn.Sequential`` in :attr:`layers`), and indexable like it (``mlp[0]`` is the first
    ``Linear``, ``mlp[1:]`` the rest), so a model that splits its MLP's first layer (NeuMF's
    ``score_all``) runs unchanged on it.

    The model's own output layer (the *head*) reads the tower's output at columns
    ``[head_offset, head_offset + widths[-1])`` of its input; :meth:`attach_head` tells the
    tower which layer that is, so that changes of the last width reach it. The head stays
    registered in the model that owns it (it is saved and counted once).

    Args:
        input_dim: width of the input.
        widths: hidden widths, e.g. ``[200, 80]``.
        activation: one of :data:`EXPANDABLE_ACTIVATIONS`.
        dropout: dropout after every hidden layer (none when 0).
        limits: the widths and depths :func:`apply_change` keeps to.
        init_scale: ``s``, new units' incoming weights are ``N(0, (s σ)²)`` with ``σ`` the
            Xavier-normal std of the grown layer.
        layers: adopt these ``(Linear, activation)`` pairs (their parameters, unchanged)
            instead of building fresh Xavier-initialised layers.

    Shapes: ``(..., input_dim)`` -> ``(..., widths[-1])``.
    """

    def __init__(
        self,
        input_dim: int,
        widths: Sequence[int],
        activation: str = "relu",
        dropout: float = 0.0,
        *,
        limits: ShapeLimits | None = None,
        init_scale: float = 0.1,
        layers: Sequence[tuple[nn.Linear, nn.Module]] | None = None,
    ) -> None:
        super().__init__()
        if activation.lower() not in EXPANDABLE_ACTIVATIONS:
            raise ValueError(
                f"an expandable tower supports the activations {EXPANDABLE_ACTIVATIONS}, "
                f"got {activation!r}"
            )
        if not widths:
            raise ValueError("an expandable tower needs at least one hidden layer")
        self.activation = activation.lower()
        self.dropout = float(dropout)
        self.limits = limits or ShapeLimits()
        self.init_scale = float(init_scale)
        self._head: nn.Linear | None = None
        self._head_offset = 0
        if layers is None:
            pairs: list[tuple[nn.Linear, nn.Module]] = []
            width = input_dim
            for hidden in widths:
                linear = nn.Linear(width, hidden)
                nn.init.xavier_uniform_(linear.weight)
                nn.init.zeros_(linear.bias)
                pairs.append((linear, activation_layer(self.activation, hidden)))
                width = hidden
        else:
            pairs = list(layers)
            if [linear.out_features for linear, _ in pairs] != list(widths):
                raise ValueError("the adopted layers do not have the given widths")
            if pairs[0][0].in_features != input_dim:
                raise ValueError("the adopted first layer does not read input_dim columns")
        self.layers = nn.Sequential()
        self._set_layers(pairs)

    # ------------------------------------------------------------------ layout
    @property
    def _stride(self) -> int:
        return 3 if self.dropout > 0 else 2

    def _set_layers(self, pairs: Sequence[tuple[nn.Linear, nn.Module]]) -> None:
        modules: list[nn.Module] = []
        for linear, act in pairs:
            modules += [linear, act]
            if self.dropout > 0:
                modules.append(nn.Dropout(self.dropout))
        self.layers = nn.Sequential(*modules)

    def _pairs(self) -> list[tuple[nn.Linear, nn.Module]]:
        modules = list(self.layers)
        out = []
        for start in range(0, len(modules), self._stride):
            linear = modules[start]
            assert isinstance(linear, nn.Linear)
            out.append((linear, modules[start + 1]))
        return out

    @property
    def linears(self) -> list[nn.Linear]:
        """The hidden ``Linear`` layers, first to last."""
        return [linear for linear, _ in self._pairs()]

    @property
    def input_dim(self) -> int:
        """Width of the input."""
        return self.linears[0].in_features

    @property
    def widths(self) -> list[int]:
        """Hidden widths, first to last."""
        return [linear.out_features for linear in self.linears]

    @property
    def depth(self) -> int:
        """Number of hidden layers."""
        return len(self.layers) // self._stride

    def __len__(self) -> int:
        return len(self.layers)

    def __getitem__(self, index: int | slice) -> nn.Module:
        return self.layers[index]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(..., input_dim)`` -> ``(..., widths[-1])``."""
        out: torch.Tensor = self.layers(x)
        return out

    # ------------------------------------------------------------------ the head
    def attach_head(self, head: nn.Linear, offset: int = 0) -> None:
        """Name the layer that reads the tower: columns ``[offset, offset + widths[-1])`` of
        ``head``'s input. Held unregistered: the model owning ``head`` registers it."""
        if head.in_features < offset + self.widths[-1]:
            raise ValueError(
                f"the head reads {head.in_features} columns, fewer than offset {offset} + "
                f"the tower's {self.widths[-1]}"
            )
        self.__dict__["_head"] = head
        self._head_offset = int(offset)

    @property
    def head(self) -> nn.Linear | None:
        """The layer after the tower (see :meth:`attach_head`), or None."""
        head: nn.Linear | None = self.__dict__.get("_head")
        return head

    @property
    def head_offset(self) -> int:
        """First column of the head's input that the tower's output fills."""
        return self._head_offset

    def _outgoing(self, layer: int) -> torch.Tensor | None:
        """The weights reading layer ``layer``'s units, ``(out, widths[layer])``."""
        if layer + 1 < self.depth:
            return self.linears[layer + 1].weight
        head = self.head
        if head is None:
            return None
        width = self.widths[-1]
        return head.weight[:, self._head_offset : self._head_offset + width]

    # ------------------------------------------------------------------ counting
    def _shaped_tensors(self) -> list[torch.Tensor]:
        tensors: list[torch.Tensor] = list(self.layers.parameters())
        outgoing = self._outgoing(self.depth - 1)
        if outgoing is not None:
            tensors.append(outgoing)
        return tensors

    def num_parameters(self) -> int:
        """Parameters a controller shapes: hidden weights and biases, per-unit activation
        parameters and the head's ``out · widths[-1]`` tower columns (see the module
        docstring)."""
        return sum(t.numel() for t in self._shaped_tensors())

    def nbytes(self) -> int:
        """Bytes of the :meth:`num_parameters` parameters (4 each in float32)."""
        return sum(t.numel() * t.element_size() for t in self._shaped_tensors())

    def spec(self) -> dict[str, Any]:
        """What rebuilds the tower's shapes (the weights are state): plain JSON values."""
        return {
            "input_dim": self.input_dim,
            "widths": self.widths,
            "activation": self.activation,
            "dropout": self.dropout,
            "init_scale": self.init_scale,
            "limits": dataclasses.asdict(self.limits),
            "head_offset": self._head_offset,
        }

    # ------------------------------------------------------------------ saliency
    @torch.no_grad()
    def saliency(self, layer: int, inputs: torch.Tensor | None = None) -> torch.Tensor:
        """Saliency of each unit of hidden layer ``layer``, ``(widths[layer],)``.

        Without ``inputs``: ``‖(w_j, b_j)‖₂ · ‖W_{k+1}[:, j]‖₂`` (incoming times outgoing
        norm; invariant to the ReLU rescaling ``α``/``1/α``). With ``inputs (B, input_dim)``:
        ``mean_b |h_bj| · ‖W_{k+1}[:, j]‖₂``, the measured activation (eval mode) in place of
        the incoming norm. Without a head the last layer's outgoing norm is taken as 1.
        """
        self._check_layer(layer)
        linear = self.linears[layer]
        outgoing = self._outgoing(layer)
        out_norm = (
            torch.ones(linear.out_features) if outgoing is None else outgoing.detach().norm(dim=0)
        )
        if inputs is None:
            incoming = torch.sqrt(linear.weight.pow(2).sum(dim=1) + linear.bias.pow(2))
            return incoming * out_norm
        was_training = self.training
        self.eval()
        try:
            hidden = self.layers[: (layer + 1) * self._stride](inputs)
        finally:
            self.train(was_training)
        return hidden.abs().reshape(-1, linear.out_features).mean(dim=0) * out_norm

    # ------------------------------------------------------------------ re-shaping
    def _check_layer(self, layer: int) -> None:
        if not 0 <= layer < self.depth:
            raise IndexError(f"hidden layer {layer} does not exist (depth {self.depth})")

    def grow(
        self, layer: int, units: int, generator: torch.Generator | None = None
    ) -> list[ParameterChange]:
        """Add ``units`` units to hidden layer ``layer`` (old weights kept, outgoing columns
        zero: the function is unchanged). Raises beyond ``limits.max_width``."""
        self._check_layer(layer)
        linear, act = self._pairs()[layer]
        width = linear.out_features
        if units < 1 or width + units > self.limits.max_width:
            raise ValueError(
                f"cannot grow layer {layer} from {width} by {units} (max {self.limits.max_width})"
            )
        fan_in = linear.in_features
        std = self.init_scale * math.sqrt(2.0 / (fan_in + width + units))
        rows = torch.randn(units, fan_in, generator=generator) * std
        kept_rows = (_positions(width), None)
        changes = [
            _replace(linear, "weight", torch.cat([linear.weight.detach(), rows]), kept_rows),
            _replace(
                linear,
                "bias",
                torch.cat([linear.bias.detach(), torch.zeros(units)]),
                (kept_rows[0],),
            ),
        ]
        linear.out_features = width + units
        changes += _resize_activation(act, torch.arange(width), width + units)
        changes += self._resize_outgoing(layer, width, torch.arange(width), width + units)
        return changes

    def shrink(
        self, layer: int, units: int, inputs: torch.Tensor | None = None
    ) -> list[ParameterChange]:
        """Remove the ``units`` units of lowest :meth:`saliency` (ties: the later unit goes)
        from hidden layer ``layer``; the kept units' weights are exactly the old ones. Raises
        below ``limits.min_width``."""
        self._check_layer(layer)
        linear, act = self._pairs()[layer]
        width = linear.out_features
        if units < 1 or width - units < self.limits.min_width:
            raise ValueError(
                f"cannot shrink layer {layer} from {width} by {units} (min {self.limits.min_width})"
            )
        order = torch.argsort(self.saliency(layer, inputs), descending=True, stable=True)
        kept = torch.sort(order[: width - units]).values
        moved = (kept, torch.arange(len(kept)))
        changes = [
            _replace(linear, "weight", linear.weight.detach()[kept], (moved, None)),
            _replace(linear, "bias", linear.bias.detach()[kept], (moved,)),
        ]
        linear.out_features = len(kept)
        changes += _resize_activation(act, kept, len(kept))
        changes += self._resize_outgoing(layer, width, kept, len(kept))
        return changes

    def _resize_outgoing(
        self, layer: int, old_width: int, kept: torch.Tensor, new_width: int
    ) -> list[ParameterChange]:
        """Give the layer reading ``layer`` (``old_width`` units before the change) the
        columns of the units ``kept`` (old positions, in order) at positions
        ``0..len(kept)-1`` and zero columns up to ``new_width``."""
        if layer + 1 < self.depth:
            reader, offset = self.linears[layer + 1], 0
        elif self.head is not None:
            reader, offset = self.head, self._head_offset
        else:
            return []
        old = reader.weight.detach()
        # the reader's input is [before | tower | after]; only the tower's columns change
        tower = torch.zeros(old.shape[0], new_width)
        tower[:, : len(kept)] = old[:, offset + kept]
        new = torch.cat([old[:, :offset], tower, old[:, offset + old_width :]], dim=1)
        tail = old.shape[1] - offset - old_width
        old_cols = torch.cat(
            [torch.arange(offset), offset + kept, torch.arange(tail) + offset + old_width]
        )
        new_cols = torch.cat(
            [
                torch.arange(offset),
                offset + torch.arange(len(kept)),
                torch.arange(tail) + offset + new_width,
            ]
        )
        change = _replace(reader, "weight", new, (None, (old_cols, new_cols)))
        reader.in_features = new.shape[1]
        return [change]

    def add_layer(self, position: int) -> list[ParameterChange]:
        """Insert an identity-initialised square layer after hidden layer ``position - 1``
        (``1 <= position <= depth``); exact for ReLU (its input is a ReLU output). Raises at
        ``limits.max_depth``."""
        if self.depth >= self.limits.max_depth:
            raise ValueError(
                f"cannot add a layer at depth {self.depth} (max {self.limits.max_depth})"
            )
        if not 1 <= position <= self.depth:
            raise ValueError(
                f"a layer is added after a hidden layer (position 1..{self.depth}), where its "
                f"input is an activation output that the identity keeps; got {position}"
            )
        width = self.widths[position - 1]
        linear = _linear(torch.eye(width), torch.zeros(width))
        act = activation_layer(self.activation, width)
        pairs = self._pairs()
        pairs.insert(position, (linear, act))
        self._set_layers(pairs)
        return [ParameterChange(None, p, None) for p in (*linear.parameters(), *act.parameters())]

    def remove_layer(self, position: int) -> list[ParameterChange]:
        """Remove hidden layer ``position``, composing the affine maps around it (see the
        module docstring). Raises at ``limits.min_depth``."""
        self._check_layer(position)
        if self.depth <= self.limits.min_depth:
            raise ValueError(
                f"cannot remove a layer at depth {self.depth} (min {self.limits.min_depth})"
            )
        pairs = self._pairs()
        linear, act = pairs[position]
        w, b = linear.weight.detach(), linear.bias.detach()
        changes = [
            ParameterChange(p, None, None) for p in (*linear.parameters(), *act.parameters())
        ]
        if position + 1 < self.depth:
            reader = pairs[position + 1][0]
            merged = reader.weight.detach() @ w
            bias = reader.weight.detach() @ b + reader.bias.detach()
            changes.append(_replace(reader, "weight", merged, None))
            changes.append(_replace(reader, "bias", bias, (None,)))
            reader.in_features = merged.shape[1]
        elif self.head is not None:
            head, offset = self.head, self._head_offset
            old = head.weight.detach()
            tower = old[:, offset : offset + linear.out_features]
            new = torch.cat(
                [old[:, :offset], tower @ w, old[:, offset + linear.out_features :]], dim=1
            )
            bias = head.bias.detach() + tower @ b if head.bias is not None else None
            old_cols = torch.cat(
                [torch.arange(offset), torch.arange(offset + linear.out_features, old.shape[1])]
            )
            new_cols = torch.cat(
                [torch.arange(offset), torch.arange(offset + w.shape[1], new.shape[1])]
            )
            changes.append(_replace(head, "weight", new, (None, (old_cols, new_cols))))
            if bias is not None:
                changes.append(_replace(head, "bias", bias, (None,)))
            head.in_features = new.shape[1]
        del pairs[position]
        self._set_layers(pairs)
        return changes


def _linear(weight: torch.Tensor, bias: torch.Tensor) -> nn.Linear:
    """A ``Linear`` holding ``weight (out, in)`` and ``bias (out,)``, built without drawing
    from torch's global generator."""
    linear = torch.nn.utils.skip_init(nn.Linear, weight.shape[1], weight.shape[0])
    with torch.no_grad():
        linear.weight.copy_(weight)
        linear.bias.copy_(bias)
    return linear


def _replace(
    module: nn.Module,
    name: str,
    value: torch.Tensor,
    index: tuple[tuple[torch.Tensor, torch.Tensor] | None, ...] | None,
) -> ParameterChange:
    """Swap ``module.<name>`` for a new parameter holding ``value``."""
    old = getattr(module, name)
    new = nn.Parameter(value.detach().clone(), requires_grad=old.requires_grad)
    setattr(module, name, new)
    return ParameterChange(old, new, index)


def _resize_activation(act: nn.Module, kept: torch.Tensor, width: int) -> list[ParameterChange]:
    """Per-unit activation parameters (PReLU's ``a``) follow the units: kept ones at
    ``0..len(kept)-1``, new ones at PReLU's initial 0.25."""
    if not isinstance(act, nn.PReLU):
        return []
    value = torch.full((width,), 0.25)
    value[: len(kept)] = act.weight.detach()[kept]
    change = _replace(act, "weight", value, ((kept, torch.arange(len(kept))),))
    act.num_parameters = width
    return [change]


# ---------------------------------------------------------------------------------- towers
class ExpandableTower(nn.Module):
    """The deep tower of a CTR model with expandable hidden layers: ``(B, m·d) -> (B,)``.

    Replaces a :class:`~leanrec.models.ctr.dnn.DeepTower` (``hidden`` then the 1-logit
    ``output`` layer, which follows the last width)."""

    def __init__(self, hidden: ExpandableMLP, output: nn.Linear) -> None:
        super().__init__()
        self.hidden = hidden
        self.output = output
        hidden.attach_head(output)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logit: torch.Tensor = self.output(self.hidden(x))
        return logit.squeeze(-1)


def _adopt(sequential: nn.Sequential, activation: str, dropout: float) -> ExpandableMLP:
    """An :class:`ExpandableMLP` holding the hidden layers of ``sequential`` (``Linear``,
    activation, optional ``Dropout`` per layer) with their parameters."""
    pairs: list[tuple[nn.Linear, nn.Module]] = []
    modules = list(sequential)
    i = 0
    while i < len(modules):
        linear, act = modules[i], modules[i + 1]
        if not isinstance(linear, nn.Linear):
            raise TypeError(f"expected a Linear at position {i}, got {type(linear).__name__}")
        pairs.append((linear, act))
        i += 2
        if i < len(modules) and isinstance(modules[i], nn.Dropout):
            i += 1
    return ExpandableMLP(
        pairs[0][0].in_features,
        [linear.out_features for linear, _ in pairs],
        activation,
        dropout,
        layers=pairs,
    )


def _base_model(model: nn.Module) -> nn.Module:
    """The pointwise model inside a stream model, or ``model`` itself."""
    from leanrec.models.stream import StreamModel

    return model.model if isinstance(model, StreamModel) else model


def expandable_tower(model: nn.Module) -> ExpandableMLP | None:
    """The :class:`ExpandableMLP` of ``model`` (a stream model, CTR model or NeuMF), or None
    when it has not been made expandable."""
    base = _base_model(model)
    if isinstance(base, CTRModel) and isinstance(getattr(base, "deep", None), ExpandableTower):
        return base.deep.hidden  # type: ignore[union-attr,return-value]
    if isinstance(base, NeuMF) and isinstance(base.mlp, ExpandableMLP):
        return base.mlp
    return None


def make_expandable(
    model: nn.Module,
    spec: dict[str, Any] | None = None,
    *,
    limits: ShapeLimits | None = None,
    init_scale: float = 0.1,
) -> ExpandableMLP:
    """Swap the deep tower of a CTR model (DNN, Wide&Deep, DeepFM, xDeepFM: ``model.deep``)
    or NeuMF's MLP (``model.mlp``) for an :class:`ExpandableMLP` holding the same parameters,
    so the model's predictions are unchanged; the model's output layer becomes the tower's
    head. ``model`` may be a :class:`~leanrec.models.stream.StreamModel` around either.

    Args:
        model: the model (changed in place).
        spec: a saved tower's :meth:`ExpandableMLP.spec`: re-shape the tower to its widths
            (placeholder weights) so that the saved state dict loads into it.
        limits: the shape limits (default 16..512 wide, 1..3 deep; ``spec``'s when given).
        init_scale: ``s`` of grown units (``spec``'s when given).

    Returns:
        The tower (the same object if ``model`` was expandable already).
    """
    base = _base_model(model)
    tower = expandable_tower(base)
    if tower is None:
        tower = _swap(base)
    if spec is not None:
        limits = ShapeLimits(**spec["limits"])
        init_scale = float(spec["init_scale"])
        _reshape_to(tower, [int(w) for w in spec["widths"]])
    if limits is not None:
        tower.limits = limits
    tower.init_scale = init_scale
    return tower


def _swap(base: nn.Module) -> ExpandableMLP:
    if isinstance(base, CTRModel) and isinstance(getattr(base, "deep", None), DeepTower):
        deep = base.deep
        assert isinstance(deep, DeepTower)
        modules = list(deep.layers)
        output = modules[-1]
        assert isinstance(output, nn.Linear)
        if len(modules) < 2:
            raise ValueError(f"{type(base).__name__}'s deep tower has no hidden layer")
        hidden = _adopt(nn.Sequential(*modules[:-1]), base.config.activation, base.config.dropout)
        base.deep = ExpandableTower(hidden, output)
        return hidden
    if isinstance(base, NeuMF):
        if not len(base.mlp):
            raise ValueError("NeuMF's MLP has no hidden layer")
        hidden = _adopt(base.mlp, "relu", base.config.dropout)
        base.mlp = hidden  # type: ignore[assignment]  # indexes like the Sequential it replaces
        hidden.attach_head(base.output, offset=base.config.embedding_dim)
        return hidden
    raise TypeError(
        f"{type(base).__name__} has no deep tower to make expandable (a CTR model with a "
        "DeepTower: DNN, Wide&Deep, DeepFM, xDeepFM; or NeuMF)"
    )


def _reshape_to(tower: ExpandableMLP, widths: Sequence[int]) -> None:
    """Bring ``tower`` to ``widths`` (weights are placeholders, to be loaded over)."""
    if not widths:
        raise ValueError("a tower spec needs at least one width")
    saved_limits = tower.limits
    tower.limits = ShapeLimits(1, max(max(widths), *tower.widths), 1, max(len(widths), tower.depth))
    try:
        while tower.depth < len(widths):
            tower.add_layer(tower.depth)
        while tower.depth > len(widths):
            tower.remove_layer(tower.depth - 1)
        for layer, target in enumerate(widths):
            current = tower.widths[layer]
            if target > current:
                tower.grow(layer, target - current, torch.Generator().manual_seed(0))
            elif target < current:
                tower.shrink(layer, current - target)
    finally:
        tower.limits = saved_limits


# ---------------------------------------------------------------------------------- changes
@dataclass(frozen=True)
class ArchitectureChange:
    """A change of the tower between sessions: width deltas per current hidden layer, then
    optionally a layer added or removed at the end.

    Attributes:
        width_deltas: per current hidden layer, units to add (> 0) or remove (< 0), e.g.
            ``(-16, 0, +32)``; must have one entry per layer.
        depth_delta: ``+1`` adds an identity layer after the last hidden layer (as wide as
            it, after the width deltas), ``-1`` removes the last hidden layer, 0 neither.
    """

    width_deltas: tuple[int, ...]
    depth_delta: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "width_deltas", tuple(int(d) for d in self.width_deltas))
        if self.depth_delta not in (-1, 0, 1):
            raise ValueError(f"depth_delta must be -1, 0 or +1, got {self.depth_delta}")


@dataclass
class AppliedChange:
    """What :func:`apply_change` did.

    Attributes:
        requested: the change asked for.
        applied: the change made after clamping to the limits.
        widths_before: hidden widths before.
        widths_after: hidden widths after.
        notes: one line per clamp, saying what and why.
        parameter_changes: for the optimiser's state
            (:func:`leanrec.train.reshape.move_optimizer_state`).
    """

    requested: ArchitectureChange
    applied: ArchitectureChange
    widths_before: list[int]
    widths_after: list[int]
    notes: list[str] = field(default_factory=list)
    parameter_changes: list[ParameterChange] = field(default_factory=list, repr=False)

    @property
    def clamped(self) -> bool:
        """Whether the limits cut the requested change."""
        return self.requested != self.applied


def apply_change(
    model: nn.Module, change: ArchitectureChange, generator: torch.Generator | None = None
) -> AppliedChange:
    """Apply ``change`` to the expandable tower of ``model``, clamped to its limits.

    Width deltas come first (each layer's delta is cut so the width stays within
    ``[min_width, max_width]``; a layer already outside keeps its width), then the depth
    change (skipped at ``min_depth`` / ``max_depth``).

    Raises:
        ValueError: ``model`` has no expandable tower, or ``width_deltas`` does not have one
            entry per hidden layer.
    """
    tower = expandable_tower(model)
    if tower is None:
        raise ValueError(f"{type(model).__name__} has no expandable tower (make_expandable)")
    if len(change.width_deltas) != tower.depth:
        raise ValueError(
            f"the change has {len(change.width_deltas)} width deltas, the tower "
            f"{tower.depth} layers"
        )
    limits = tower.limits
    before = tower.widths
    notes: list[str] = []
    params: list[ParameterChange] = []
    done: list[int] = []
    for layer, (delta, width) in enumerate(zip(change.width_deltas, before, strict=True)):
        if delta > 0:
            made = max(0, min(delta, limits.max_width - width))
            if made:
                params += tower.grow(layer, made, generator)
        elif delta < 0:
            made = -max(0, min(-delta, width - limits.min_width))
            if made:
                params += tower.shrink(layer, -made)
        else:
            made = 0
        if made != delta:
            notes.append(
                f"layer {layer}: {delta:+d} clamped to {made:+d} (width {width}, limits "
                f"{limits.min_width}..{limits.max_width})"
            )
        done.append(made)
    depth_delta = change.depth_delta
    if depth_delta > 0:
        if tower.depth < limits.max_depth:
            params += tower.add_layer(tower.depth)
        else:
            notes.append(f"no layer added: depth {tower.depth} is the max {limits.max_depth}")
            depth_delta = 0
    elif depth_delta < 0:
        if tower.depth > limits.min_depth:
            params += tower.remove_layer(tower.depth - 1)
        else:
            notes.append(f"no layer removed: depth {tower.depth} is the min {limits.min_depth}")
            depth_delta = 0
    return AppliedChange(
        change,
        ArchitectureChange(tuple(done), depth_delta),
        before,
        tower.widths,
        notes,
        params,
    )
