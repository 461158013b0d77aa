"""AMEIR Stage 1 (Zhao et al., IJCAI 2021, Sec. 2.1-2.3): behaviour modelling as a one-shot
supernet, its derived child networks, and an adapter to next-item retrieval.

A behaviour network stacks ``L_a`` residual blocks over the embedded behaviour sequence
``H^a_0 = [e^a_1, ..., e^a_T]`` (Eq. 1)::

    H_l = Act_l(Layer_l(Norm_l(H_{l-1}))) + H_{l-1}

with ``Norm`` from :data:`~leanrec.search.architecture.space.NORMS`, ``Layer`` from
:data:`~leanrec.search.architecture.space.LAYERS` and ``Act`` from
:data:`~leanrec.search.architecture.space.ACTIVATIONS`, and reads the last hidden states out
as ``h^a = [Σ_i h_i, h_T, Σ_i a_i h_i]`` (sum pooling, the last state, DIN target attention;
:class:`SequenceReadout` takes any subset of these parts and mean pooling).

* :class:`BehaviorSupernet` is the one-shot model of Step 1 (Sec. 2.3): every block holds one
  LayerNorm and *every* candidate layer; a forward pass gets the sampled
  :class:`~leanrec.search.architecture.space.BlockChoice` per block and runs only the chosen
  layer, so each candidate keeps its own weights across samples (weight sharing).
* :class:`BehaviorNetwork` is a derived child model holding only the chosen operations;
  :meth:`BehaviorSupernet.derive` builds one that inherits the supernet's weights
  ("Derivation", Sec. 2.3), so ``supernet.derive(c)(h, m, t) == supernet(h, m, t, c)``.
* :class:`SearchedSequenceEncoder` plugs either into
  :class:`~leanrec.models.seq.NextItemModel` (the paper's "sequential scenario").

Shapes and padding: hidden states are ``(B, T, d)``, ``mask`` is bool ``(B, T)`` (True = real
behaviour). leanrec's sequences are right-aligned (``[0, 0, a, b, c]``: the most recent item is
in the last column), but no code relies on it: padded positions anywhere (leading padding or
holes) are treated as missing, and the order of the real positions is what counts. Every layer
zeroes its input at padded
positions before use and returns 0 there, so neither the values nor (up to float rounding) the
number of padded positions change the outputs at real positions or the readout.

Causal mode (``causal=True``): AMEIR's layers are bidirectional (SAME convolutions and
pooling, Bi-GRU, bidirectional self-attention), which is right for a CTR history (all of it is
in the past of the target) and for a next-item objective scored at the last position only. A
trainer that scores *every* position ``t`` against the item at ``t + 1`` (SASRec-style, as
:class:`~leanrec.train.sequential.SequentialTrainer` does) would let a bidirectional layer read
the label, so every layer has a causal variant: convolutions and pooling windows end at ``t``
(left padding only, as in NextItNet), self-attention is masked to keys ``<= t``, and ``bigru``
keeps only its forward GRU. The same names and choices describe both variants.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import cast

import torch
from torch import nn
from torch.nn import functional as F

from leanrec.data.sequential import PADDING_ID
from leanrec.models.ctr.din import ActivationUnit
from leanrec.models.seq.base import SequenceEncoder
from leanrec.search.architecture.space import (
    ACTIVATIONS,
    LAYERS,
    NORMS,
    PAPER_READOUT,
    BlockChoice,
    check_readout,
)
from leanrec.seeding import torch_seeded

__all__ = [
    "ATTENTION_ACTIVATION",
    "ATTENTION_DIMS",
    "BehaviorBlock",
    "BehaviorNetwork",
    "BehaviorSupernet",
    "BiGRULayer",
    "ConvLayer",
    "DerivedBlock",
    "PoolLayer",
    "SearchedSequenceEncoder",
    "SelfAttentionLayer",
    "SequenceReadout",
    "TargetAttentionLayer",
    "ZeroLayer",
    "candidate_layers",
    "make_activation",
    "make_layer",
    "make_norm",
]

ATTENTION_DIMS: tuple[int, ...] = (80, 40)
"""Hidden widths of the DIN local activation unit (DIN paper: 80-40)."""
ATTENTION_ACTIVATION = "prelu"
"""Activation of the local activation unit. DIN uses Dice or PReLU; PReLU has no batch
statistics, so a sample's score does not depend on the rest of its batch (child models are
compared on validation subsets with inherited weights)."""

_ACTIVATION_FUNCTIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "relu": F.relu,
    "gelu": F.gelu,
    "swish": F.silu,
    "identity": lambda x: x,
}


# ---------------------------------------------------------------------------------- helpers
def _zero_padding(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``x`` ``(B, T, d)`` with padded positions set to 0 (``masked_fill``: also clears NaN)."""
    return x.masked_fill(~mask.unsqueeze(-1), 0.0)


def _check_mask(h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Validate a ``(B, T)`` mask against ``h`` ``(B, T, d)``; return it as bool."""
    if h.ndim != 3:
        raise ValueError(f"hidden states must have shape (B, T, d), got {tuple(h.shape)}")
    if mask.shape != h.shape[:2]:
        raise ValueError(f"mask shape {tuple(mask.shape)} does not match {tuple(h.shape[:2])}")
    return mask.bool()


def _compaction(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Permutations that move the real positions of each row to the front, in order.

    Returns ``(order, lengths)``: ``order`` ``(B, T)`` with ``order[b, t]`` the column of the
    ``t``-th real position of row ``b`` for ``t < lengths[b]`` (then the padded columns), and
    ``lengths`` ``(B,)`` the number of real positions. ``[0, 0, a, b, c]`` -> ``[a, b, c, 0, 0]``.
    """
    order = torch.argsort((~mask).to(torch.uint8), dim=1, stable=True)
    return order, mask.sum(dim=1)


def _gather_positions(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``out[b, t] = x[b, index[b, t]]`` for ``x`` ``(B, T, d)`` and ``index`` ``(B, T)``."""
    return torch.gather(x, 1, index.unsqueeze(-1).expand_as(x))


def _inverse_permutation(order: torch.Tensor) -> torch.Tensor:
    """``inverse[b, order[b, t]] = t`` for a batch of permutations ``(B, T)``."""
    positions = torch.arange(order.shape[1], device=order.device).expand_as(order)
    return torch.empty_like(order).scatter_(1, order, positions)


def _real_position_scores(
    unit: ActivationUnit, h: torch.Tensor, mask: torch.Tensor, target: torch.Tensor
) -> torch.Tensor:
    """DIN weights ``a_i = a(h_i, target)`` ``(B, T)``, exactly 0 on padding.

    The unit only runs on real positions (as :class:`~leanrec.models.ctr.din.DIN` does), so
    padding can neither change a score nor a batch statistic of the unit's activation.
    """
    scores = h.new_zeros(mask.shape)
    if bool(mask.any()):
        rows = mask.nonzero()[:, 0]
        scores = scores.index_put((mask,), unit(h[mask], target[rows]))
    return scores


def candidate_layers(has_target: bool) -> tuple[str, ...]:
    """The layer set of a block: :data:`LAYERS`, without ``target_attention`` if no target."""
    return LAYERS if has_target else tuple(x for x in LAYERS if x != "target_attention")


# ----------------------------------------------------------------------------------- layers
class ConvLayer(nn.Module):
    """1-D convolution ``d -> d`` over positions, stride 1, kernel ``k``, dilation ``r``.

    SAME padding (``r (k - 1) / 2`` zeros on each side) or, when ``causal``, ``r (k - 1)`` zeros
    on the left only. Padded positions are zero on input, so they act like SAME padding.

    Shapes: ``h (B, T, d), mask (B, T), target ignored -> (B, T, d)``, 0 at padding.
    """

    def __init__(self, dim: int, kernel_size: int, dilation: int = 1, causal: bool = False):
        super().__init__()
        if kernel_size % 2 == 0:
            raise ValueError(f"SAME padding needs an odd kernel size, got {kernel_size}")
        span = dilation * (kernel_size - 1)
        self.padding = (span, 0) if causal else (span // 2, span // 2)
        self.conv = nn.Conv1d(dim, dim, kernel_size, dilation=dilation)

    def forward(
        self, h: torch.Tensor, mask: torch.Tensor, target: torch.Tensor | None = None
    ) -> torch.Tensor:
        x = F.pad(_zero_padding(h, mask).transpose(1, 2), self.padding)  # (B, d, T + span)
        return _zero_padding(self.conv(x).transpose(1, 2), mask)


class PoolLayer(nn.Module):
    """Average or max pooling over a window of 3 positions, stride 1, no parameters.

    Only real positions inside the window count: the average divides by the number of real
    neighbours (``count_include_pad`` off for both SAME and history padding), the maximum treats
    padding as ``-inf``. The window is ``[t-1, t+1]`` (SAME) or ``[t-2, t]`` (``causal``).

    Shapes: ``h (B, T, d), mask (B, T), target ignored -> (B, T, d)``, 0 at padding.
    """

    kernel_size = 3

    def __init__(self, kind: str, causal: bool = False) -> None:
        super().__init__()
        if kind not in ("avg", "max"):
            raise ValueError(f"pooling kind must be 'avg' or 'max', got {kind!r}")
        self.kind = kind
        self.causal = causal

    def _pool(self, x: torch.Tensor, fill: float) -> torch.Tensor:
        """Pool ``(B, C, T)`` over windows padded with ``fill``; the ``avg`` kind sums/3."""
        k = self.kernel_size
        x = F.pad(x, (k - 1, 0) if self.causal else (k // 2, k // 2), value=fill)
        if self.kind == "max":
            return F.max_pool1d(x, k, stride=1)
        return F.avg_pool1d(x, k, stride=1)

    def forward(
        self, h: torch.Tensor, mask: torch.Tensor, target: torch.Tensor | None = None
    ) -> torch.Tensor:
        real = mask.unsqueeze(-1)  # (B, T, 1)
        if self.kind == "max":
            x = h.masked_fill(~real, -torch.inf).transpose(1, 2)  # (B, d, T)
            pooled = self._pool(x, -torch.inf).transpose(1, 2)
        else:
            x = _zero_padding(h, mask).transpose(1, 2)
            total = self._pool(x, 0.0)  # (B, d, T): window sum / 3
            count = self._pool(real.transpose(1, 2).to(h.dtype), 0.0)  # (B, 1, T): real / 3
            pooled = (total / count.clamp_min(1e-6)).transpose(1, 2)
        return _zero_padding(pooled, mask)


class BiGRULayer(nn.Module):
    """Bi-directional GRU of state width ``d``; the two directions' states are summed.

    Padding is handled exactly: the forward GRU runs over the real items moved to the front
    (``[0, 0, a, b, c]`` -> ``[a, b, c, 0, 0]``; it starts from a zero state at the first real
    item, whatever the padding) and the backward GRU over them reversed (``[c, b, a, 0, 0]``,
    from the last real item); the states go back to the items' columns. So a row's outputs
    equal those of its unpadded sequence. With ``causal`` only the forward GRU exists.

    Shapes: ``h (B, T, d), mask (B, T), target ignored -> (B, T, d)``, 0 at padding.
    """

    def __init__(self, dim: int, causal: bool = False) -> None:
        super().__init__()
        self.forward_gru = nn.GRU(dim, dim, batch_first=True)
        self.backward_gru = None if causal else nn.GRU(dim, dim, batch_first=True)

    def forward(
        self, h: torch.Tensor, mask: torch.Tensor, target: torch.Tensor | None = None
    ) -> torch.Tensor:
        x = _zero_padding(h, mask)
        order, lengths = _compaction(mask)  # (B, T), (B,)
        states, _ = self.forward_gru(_gather_positions(x, order))  # real items first
        out = _gather_positions(states, _inverse_permutation(order))  # (B, T, d)
        if self.backward_gru is not None:
            # reverse the real prefix of each row: [a, b, c, 0, 0] -> [c, b, a, 0, 0]
            slots = torch.arange(mask.shape[1], device=mask.device).expand_as(order)
            lengths = lengths.unsqueeze(1)
            within = slots < lengths
            reverse = torch.gather(order, 1, torch.where(within, lengths - 1 - slots, slots))
            states, _ = self.backward_gru(_gather_positions(x, reverse))
            out = out + _gather_positions(states, _inverse_permutation(reverse))
        return _zero_padding(out, mask)


class SelfAttentionLayer(nn.Module):
    """Multi-head scaled dot-product self-attention (Vaswani et al. 2017), ``d -> d``.

    Query ``i`` attends to the real keys (all of them, or those ``<= i`` when ``causal``) and
    always to itself, so no softmax row is empty (empty histories stay finite). No positional
    encoding: order information comes from the other layers of the network.

    Shapes: ``h (B, T, d), mask (B, T), target ignored -> (B, T, d)``, 0 at padding.
    """

    def __init__(self, dim: int, num_heads: int, causal: bool = False) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"{num_heads} attention heads do not divide the width {dim}")
        self.num_heads = num_heads
        self.causal = causal
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(
        self, h: torch.Tensor, mask: torch.Tensor, target: torch.Tensor | None = None
    ) -> torch.Tensor:
        B, T, d = h.shape
        qkv = self.qkv(_zero_padding(h, mask)).view(B, T, 3, self.num_heads, d // self.num_heads)
        query, key, value = qkv.permute(2, 0, 3, 1, 4)  # each (B, heads, T, d / heads)
        allowed = mask[:, None, None, :]  # (B, 1, 1, T): real keys
        eye = torch.eye(T, dtype=torch.bool, device=h.device)
        if self.causal:
            allowed = allowed & torch.ones_like(eye).tril()
        allowed = allowed | eye  # (B, 1, T, T)
        attended = F.scaled_dot_product_attention(query, key, value, attn_mask=allowed)
        out = self.out(attended.transpose(1, 2).reshape(B, T, d))
        return _zero_padding(out, mask)


class TargetAttentionLayer(nn.Module):
    """Per-position gate by the target: ``out_i = a(h_i, target) · h_i`` (DIN, Zhou et al. 2018).

    ``a`` is DIN's local activation unit :class:`~leanrec.models.ctr.din.ActivationUnit`; as in
    DIN the weights are raw (no softmax), so their size carries the strength of the interest.

    Shapes: ``h (B, T, d), mask (B, T), target (B, d) -> (B, T, d)``, 0 at padding.
    """

    def __init__(
        self,
        dim: int,
        attention_dims: tuple[int, ...] = ATTENTION_DIMS,
        attention_activation: str = ATTENTION_ACTIVATION,
    ) -> None:
        super().__init__()
        self.unit = ActivationUnit(dim, attention_dims, attention_activation)

    def forward(
        self, h: torch.Tensor, mask: torch.Tensor, target: torch.Tensor | None = None
    ) -> torch.Tensor:
        if target is None:
            raise ValueError("the target_attention layer needs a target vector (B, d)")
        x = _zero_padding(h, mask)
        return _real_position_scores(self.unit, x, mask, target).unsqueeze(-1) * x


class ZeroLayer(nn.Module):
    """The zero operation: ``(B, T, d) -> zeros (B, T, d)``; makes its block the identity."""

    def forward(
        self, h: torch.Tensor, mask: torch.Tensor, target: torch.Tensor | None = None
    ) -> torch.Tensor:
        return torch.zeros_like(h)


def make_layer(
    name: str,
    dim: int,
    *,
    causal: bool = False,
    attention_dims: tuple[int, ...] = ATTENTION_DIMS,
    attention_activation: str = ATTENTION_ACTIVATION,
) -> nn.Module:
    """The layer ``name`` (one of :data:`LAYERS`) of width ``dim``.

    Every layer is called as ``layer(h (B, T, d), mask (B, T) bool, target (B, d) | None)`` and
    returns ``(B, T, d)`` with zeros at padded positions.

    Args:
        name: the layer's name in :data:`LAYERS`.
        dim: hidden width ``d`` (self-attention needs ``d`` divisible by its heads).
        causal: the causal variant (see the module docstring).
        attention_dims: hidden widths of the activation unit of ``target_attention``.
        attention_activation: activation of that unit.

    Example:
        >>> layer = make_layer("dilated_conv5", 8)
        >>> layer(torch.randn(2, 6, 8), torch.ones(2, 6, dtype=torch.bool), None).shape
        torch.Size([2, 6, 8])
    """
    if name in ("conv1", "conv3"):
        return ConvLayer(dim, int(name[-1]), dilation=1, causal=causal)
    if name.startswith("dilated_conv"):
        return ConvLayer(dim, int(name[-1]), dilation=2, causal=causal)
    if name in ("avg_pool3", "max_pool3"):
        return PoolLayer(name[:3], causal=causal)
    if name == "bigru":
        return BiGRULayer(dim, causal=causal)
    if name in ("self_attention2", "self_attention4"):
        return SelfAttentionLayer(dim, int(name[-1]), causal=causal)
    if name == "target_attention":
        return TargetAttentionLayer(dim, attention_dims, attention_activation)
    if name == "zero":
        return ZeroLayer()
    raise ValueError(f"unknown layer {name!r}; known: {', '.join(LAYERS)}")


def make_norm(name: str, dim: int) -> nn.Module:
    """``"layernorm"`` -> ``nn.LayerNorm(dim)``, ``"none"`` -> identity (see :data:`NORMS`)."""
    if name == "layernorm":
        return nn.LayerNorm(dim)
    if name == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {name!r}; known: {', '.join(NORMS)}")


def make_activation(name: str) -> nn.Module:
    """relu / gelu / swish (SiLU) / identity as a module (see :data:`ACTIVATIONS`)."""
    modules: dict[str, type[nn.Module]] = {
        "relu": nn.ReLU,
        "gelu": nn.GELU,
        "swish": nn.SiLU,
        "identity": nn.Identity,
    }
    if name not in modules:
        raise ValueError(f"unknown activation {name!r}; known: {', '.join(ACTIVATIONS)}")
    return modules[name]()


def _residual(
    h: torch.Tensor,
    mask: torch.Tensor,
    target: torch.Tensor | None,
    norm: nn.Module | None,
    layer: nn.Module,
    activation: str,
) -> torch.Tensor:
    """Eq. 1, ``Act(Layer(Norm(h))) + h``; shared by the supernet and derived blocks so that
    both run the very same operations. Zero at padding (layers return 0 there, every activation
    maps 0 to 0, and ``h`` is 0 there)."""
    x = h if norm is None else norm(h)
    return _ACTIVATION_FUNCTIONS[activation](layer(x, mask, target)) + h


# ----------------------------------------------------------------------------------- blocks
class BehaviorBlock(nn.Module):
    """One supernet block: a LayerNorm and every candidate layer (the one-shot model's block).

    Only the chosen layer runs; the unchosen ones get no gradient. The ``zero`` layer returns
    ``h`` unchanged (``Act(0) + h = h`` for every activation) without running the norm.

    Args:
        dim: hidden width ``d``.
        has_target: whether the ``target_attention`` candidate exists.
        causal: causal layer variants (see the module docstring).
        attention_dims, attention_activation: the target attention's activation unit.
    """

    def __init__(
        self,
        dim: int,
        has_target: bool = True,
        *,
        causal: bool = False,
        attention_dims: tuple[int, ...] = ATTENTION_DIMS,
        attention_activation: str = ATTENTION_ACTIVATION,
    ) -> None:
        super().__init__()
        self.has_target = has_target
        self.norm = nn.LayerNorm(dim)
        self.layers = nn.ModuleDict(
            {
                name: make_layer(
                    name,
                    dim,
                    causal=causal,
                    attention_dims=attention_dims,
                    attention_activation=attention_activation,
                )
                for name in candidate_layers(has_target)
                if name != "zero"
            }
        )

    def forward(
        self,
        h: torch.Tensor,
        mask: torch.Tensor,
        target: torch.Tensor | None,
        choice: BlockChoice,
    ) -> torch.Tensor:
        """``(B, T, d) -> (B, T, d)`` with the operations of ``choice``; 0 at padding."""
        if choice.layer == "zero":
            return h
        if choice.layer not in self.layers:
            raise ValueError(f"layer {choice.layer!r} is not a candidate of this block (no target)")
        norm = self.norm if choice.norm == "layernorm" else None
        return _residual(h, mask, target, norm, self.layers[choice.layer], choice.activation)

    def chosen_modules(self, choice: BlockChoice) -> list[nn.Module]:
        """The modules ``choice`` runs (its layer; the norm if chosen; none for ``zero``)."""
        if choice.layer == "zero":
            return []
        modules: list[nn.Module] = [self.layers[choice.layer]]
        if choice.norm == "layernorm":
            modules.append(self.norm)
        return modules


class DerivedBlock(nn.Module):
    """One block of a derived network: only the chosen norm and layer (no weights for ``zero``).

    Shapes: ``h (B, T, d), mask (B, T), target (B, d) | None -> (B, T, d)``.
    """

    def __init__(
        self,
        dim: int,
        choice: BlockChoice,
        *,
        causal: bool = False,
        attention_dims: tuple[int, ...] = ATTENTION_DIMS,
        attention_activation: str = ATTENTION_ACTIVATION,
    ) -> None:
        super().__init__()
        self.choice = choice
        active = choice.layer != "zero"
        self.norm: nn.Module | None = (
            nn.LayerNorm(dim) if active and choice.norm == "layernorm" else None
        )
        self.layer: nn.Module | None = (
            make_layer(
                choice.layer,
                dim,
                causal=causal,
                attention_dims=attention_dims,
                attention_activation=attention_activation,
            )
            if active
            else None
        )

    def forward(
        self, h: torch.Tensor, mask: torch.Tensor, target: torch.Tensor | None
    ) -> torch.Tensor:
        if self.layer is None:
            return h
        return _residual(h, mask, target, self.norm, self.layer, self.choice.activation)


class SequenceReadout(nn.Module):
    """``h^a``: the concatenated ``parts`` read from the hidden states (Sec. 2.1, Stage 1).

    Parts (:data:`~leanrec.search.architecture.space.READOUT_PARTS`): ``"sum"`` ``Σ_i h_i`` and
    ``"mean"`` ``Σ_i h_i / n`` over the ``n`` real positions; ``"last"`` ``h_T``, the state at
    the last real position (the last column of a right-aligned row; 0 for an empty history);
    ``"attention"`` ``Σ_i a_i h_i`` with DIN's raw local-activation weights ``a_i`` of ``h_i`` and
    the target. The paper's readout is ``("sum", "last", "attention")``; without a target the
    attention part is dropped from it.

    Shapes: ``h (B, T, d), mask (B, T), target (B, d) | None -> (B, len(parts) · d)``.
    """

    def __init__(
        self,
        dim: int,
        has_target: bool = True,
        attention_dims: tuple[int, ...] = ATTENTION_DIMS,
        attention_activation: str = ATTENTION_ACTIVATION,
        parts: Sequence[str] | None = None,
    ) -> None:
        super().__init__()
        if parts is None:
            parts = tuple(p for p in PAPER_READOUT if has_target or p != "attention")
        self.parts = check_readout(tuple(parts), has_target)
        self.output_dim = len(self.parts) * dim
        self.unit = (
            ActivationUnit(dim, attention_dims, attention_activation)
            if "attention" in self.parts
            else None
        )

    def forward(
        self, h: torch.Tensor, mask: torch.Tensor, target: torch.Tensor | None
    ) -> torch.Tensor:
        mask = _check_mask(h, mask)
        h = _zero_padding(h, mask)
        out: list[torch.Tensor] = []
        for part in self.parts:
            if part == "sum":
                out.append(h.sum(dim=1))
            elif part == "mean":
                count = mask.sum(dim=1, keepdim=True).clamp_min(1).to(h.dtype)
                out.append(h.sum(dim=1) / count)
            elif part == "last":
                columns = torch.arange(mask.shape[1], device=mask.device)
                last = (columns * mask).argmax(dim=1)  # (B,): last real column (0 when empty)
                out.append(h[torch.arange(h.shape[0], device=h.device), last])  # 0 when empty
            else:
                if target is None or self.unit is None:
                    raise ValueError("this readout has a target attention part: pass target (B, d)")
                weights = _real_position_scores(self.unit, h, mask, target)  # (B, T)
                out.append(torch.einsum("bt,btd->bd", weights, h))
        return torch.cat(out, dim=1)


# --------------------------------------------------------------------------------- networks
class BehaviorNetwork(nn.Module):
    """A derived behaviour network: ``L_a = len(choices)`` blocks with only the chosen ops.

    This is the final Stage-1 model (retrained after the search). Build one from scratch or
    with inherited weights by :meth:`BehaviorSupernet.derive`.

    Args:
        dim: hidden width ``d`` (= the behaviour embedding width ``K``).
        choices: one :class:`BlockChoice` per block (may be empty: the embedded sequence is read
            out directly).
        has_target: whether a target vector exists (target attention layer + readout part).
        causal: causal layer variants (see the module docstring).
        attention_dims, attention_activation: every DIN activation unit.
        readout: the parts of ``h^a`` (:class:`SequenceReadout`; None: the paper's).

    Example:
        >>> net = BehaviorNetwork(8, [BlockChoice("layernorm", "conv3", "relu")], has_target=False)
        >>> h, mask = torch.randn(2, 5, 8), torch.ones(2, 5, dtype=torch.bool)
        >>> net(h, mask).shape, net.readout(net(h, mask), mask).shape
        (torch.Size([2, 5, 8]), torch.Size([2, 16]))
    """

    def __init__(
        self,
        dim: int,
        choices: Sequence[BlockChoice],
        has_target: bool = True,
        *,
        causal: bool = False,
        attention_dims: tuple[int, ...] = ATTENTION_DIMS,
        attention_activation: str = ATTENTION_ACTIVATION,
        readout: Sequence[str] | None = None,
    ) -> None:
        super().__init__()
        self.dim = dim
        self.choices = tuple(choices)
        self.has_target = has_target
        self.causal = causal
        for choice in self.choices:
            if choice.layer not in candidate_layers(has_target):
                raise ValueError(f"layer {choice.layer!r} needs a target (has_target=False)")
        self.blocks = nn.ModuleList(
            DerivedBlock(
                dim,
                choice,
                causal=causal,
                attention_dims=attention_dims,
                attention_activation=attention_activation,
            )
            for choice in self.choices
        )
        self.readout_layer = SequenceReadout(
            dim, has_target, attention_dims, attention_activation, readout
        )

    @property
    def readout_dim(self) -> int:
        """Width of :meth:`readout`: ``len(readout parts) · d``."""
        return self.readout_layer.output_dim

    def forward(
        self, h0: torch.Tensor, mask: torch.Tensor, target: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Last hidden states ``H_{L_a}`` ``(B, T, d)`` of ``H_0`` ``(B, T, d)``; 0 at padding.

        Args:
            h0: behaviour embeddings (values at padded positions are ignored).
            mask: bool ``(B, T)``, True at real positions (right-aligned in leanrec).
            target: ``(B, d)`` target embedding, or ``None`` without target.
        """
        mask = _check_mask(h0, mask)
        h = _zero_padding(h0, mask)
        for block in self.blocks:
            h = block(h, mask, target)
        return h

    def readout(
        self, h: torch.Tensor, mask: torch.Tensor, target: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``h^a`` ``(B, readout_dim)`` of hidden states ``(B, T, d)`` (see
        :class:`SequenceReadout`)."""
        return self.readout_layer(h, mask, target)  # type: ignore[no-any-return]

    def parameter_count(self) -> int:
        """Number of parameters (only the chosen operations plus the readout)."""
        return sum(p.numel() for p in self.parameters())


class BehaviorSupernet(nn.Module):
    """The one-shot behaviour model of AMEIR Step 1: ``n_blocks`` :class:`BehaviorBlock` s.

    Every call gets the sampled child ``choices`` (one :class:`BlockChoice` per block, e.g. from
    :func:`~leanrec.search.architecture.space.sample_blocks`) and runs only its operations.

    Args:
        dim: hidden width ``d``.
        n_blocks: ``L_a`` (paper: 3).
        has_target: whether a target vector exists (target attention layer + readout part).
        causal: causal layer variants (see the module docstring).
        attention_dims, attention_activation: every DIN activation unit.
        readout: the parts of ``h^a`` (:class:`SequenceReadout`; None: the paper's).

    Example:
        >>> from leanrec.search.architecture.space import sample_blocks
        >>> import numpy as np
        >>> net = BehaviorSupernet(8, 3, has_target=True)
        >>> choices = sample_blocks(np.random.default_rng(0), 3)
        >>> h, target = torch.randn(2, 5, 8), torch.randn(2, 8)
        >>> mask = torch.ones(2, 5, dtype=torch.bool)
        >>> net.readout(net(h, mask, target, choices), mask, target).shape
        torch.Size([2, 24])
        >>> child = net.derive(choices)  # inherits the chosen ops' weights
        >>> torch.equal(child(h, mask, target), net(h, mask, target, choices))
        True
    """

    def __init__(
        self,
        dim: int,
        n_blocks: int,
        has_target: bool = True,
        *,
        causal: bool = False,
        attention_dims: tuple[int, ...] = ATTENTION_DIMS,
        attention_activation: str = ATTENTION_ACTIVATION,
        readout: Sequence[str] | None = None,
    ) -> None:
        super().__init__()
        if n_blocks < 0:
            raise ValueError(f"n_blocks must be >= 0, got {n_blocks}")
        self.dim = dim
        self.n_blocks = n_blocks
        self.has_target = has_target
        self.causal = causal
        self.attention_dims = tuple(attention_dims)
        self.attention_activation = attention_activation
        self.blocks = nn.ModuleList(
            BehaviorBlock(
                dim,
                has_target,
                causal=causal,
                attention_dims=self.attention_dims,
                attention_activation=attention_activation,
            )
            for _ in range(n_blocks)
        )
        self.readout_layer = SequenceReadout(
            dim, has_target, attention_dims, attention_activation, readout
        )

    @property
    def supernet_blocks(self) -> list[BehaviorBlock]:
        """The ``L_a`` blocks, typed."""
        return cast(list[BehaviorBlock], list(self.blocks))

    @property
    def candidate_layers(self) -> tuple[str, ...]:
        """The layer set of every block (no ``target_attention`` without a target)."""
        return candidate_layers(self.has_target)

    @property
    def readout_dim(self) -> int:
        """Width of :meth:`readout`: ``len(readout parts) · d``."""
        return self.readout_layer.output_dim

    def _check_choices(self, choices: Sequence[BlockChoice]) -> tuple[BlockChoice, ...]:
        choices = tuple(choices)
        if len(choices) != self.n_blocks:
            raise ValueError(f"{len(choices)} block choices for {self.n_blocks} blocks")
        for choice in choices:
            if choice.layer not in self.candidate_layers:
                raise ValueError(f"layer {choice.layer!r} needs a target (has_target=False)")
        return choices

    def forward(
        self,
        h0: torch.Tensor,
        mask: torch.Tensor,
        target: torch.Tensor | None,
        choices: Sequence[BlockChoice],
    ) -> torch.Tensor:
        """Last hidden states ``(B, T, d)`` of the child ``choices``; 0 at padding.

        Args:
            h0: behaviour embeddings ``(B, T, d)`` (values at padded positions are ignored).
            mask: bool ``(B, T)``, True at real positions (right-aligned in leanrec).
            target: ``(B, d)`` target embedding, or ``None`` without target.
            choices: ``n_blocks`` block choices.
        """
        choices = self._check_choices(choices)
        mask = _check_mask(h0, mask)
        h = _zero_padding(h0, mask)
        for block, choice in zip(self.blocks, choices):
            h = block(h, mask, target, choice)
        return h

    def readout(
        self, h: torch.Tensor, mask: torch.Tensor, target: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``h^a`` ``(B, readout_dim)`` of hidden states ``(B, T, d)`` (see
        :class:`SequenceReadout`)."""
        return self.readout_layer(h, mask, target)  # type: ignore[no-any-return]

    def chosen_modules(self, choices: Sequence[BlockChoice]) -> list[nn.Module]:
        """The modules the child ``choices`` runs, readout included."""
        choices = self._check_choices(choices)
        modules: list[nn.Module] = [self.readout_layer]
        for block, choice in zip(self.supernet_blocks, choices):
            modules += block.chosen_modules(choice)
        return modules

    def parameter_count(self, choices: Sequence[BlockChoice]) -> int:
        """Parameters of the child ``choices`` (= ``derive(choices).parameter_count()``)."""
        return sum(p.numel() for m in self.chosen_modules(choices) for p in m.parameters())

    def derive(self, choices: Sequence[BlockChoice]) -> BehaviorNetwork:
        """A standalone :class:`BehaviorNetwork` of ``choices`` with copies of this supernet's
        weights of the chosen operations (and of the readout), on the same device, in the same
        train/eval mode. Does not advance the global torch RNG."""
        choices = self._check_choices(choices)
        with torch_seeded(None):
            network = BehaviorNetwork(
                self.dim,
                choices,
                self.has_target,
                causal=self.causal,
                attention_dims=self.attention_dims,
                attention_activation=self.attention_activation,
                readout=self.readout_layer.parts,
            )
        reference = next(self.parameters(), None)
        if reference is not None:
            network.to(device=reference.device, dtype=reference.dtype)
        derived_blocks = cast(list[DerivedBlock], list(network.blocks))
        for block, derived, choice in zip(self.supernet_blocks, derived_blocks, choices):
            if derived.layer is not None:
                derived.layer.load_state_dict(block.layers[choice.layer].state_dict())
            if derived.norm is not None:
                derived.norm.load_state_dict(block.norm.state_dict())
        network.readout_layer.load_state_dict(self.readout_layer.state_dict())
        return network.train(self.training)


# --------------------------------------------------------------------------- next-item adapter
class SearchedSequenceEncoder(SequenceEncoder):
    """A behaviour network (supernet or derived) as a next-item
    :class:`~leanrec.models.seq.SequenceEncoder`: item embeddings ``(B, N, d)`` -> hidden
    states ``(B, N, d)`` (0 at padding), no target.

    Causality: the encoder contract (and the per-position loss of the sequential trainer, where
    ``h_t`` is scored against the item at ``t + 1``) needs ``h_t`` to see positions ``<= t``
    only, so the network must be built with ``causal=True``. AMEIR's bidirectional layers
    (``causal=False``) predict from the whole input and are only sound when the loss is taken at
    the last position alone; pass ``allow_bidirectional=True`` to use them that way.

    For a supernet, the child to run is the settable :attr:`choices` (set it before each
    training step or evaluation); a derived network always runs its own choices.

    Args:
        network: a :class:`BehaviorSupernet` or :class:`BehaviorNetwork` with
            ``has_target=False``.
        choices: the supernet's initial child (ignored for a derived network).
        allow_bidirectional: accept a non-causal network (see above).
        input_dropout: dropout on the item embeddings entering the network (training only;
            padding stays 0).
        positions: with a value ``N``, a learned embedding of each position's recency
            (``N - 1 - column``, as SASRec: padding-invariant) is added to the scaled item
            embeddings ``sqrt(d) · e``; sequences are then limited to ``N`` items. None: no
            positions (AMEIR's blocks alone; convolutions, pooling and the GRU still see order).
        final_norm: a LayerNorm on the hidden states (SASRec's last layer).

    Example:
        >>> from leanrec.models.seq import NextItemModel
        >>> supernet = BehaviorSupernet(8, 2, has_target=False, causal=True)
        >>> encoder = SearchedSequenceEncoder(supernet, [BlockChoice(layer="bigru")] * 2)
        >>> NextItemModel(50, encoder)(torch.tensor([[0, 3, 7], [1, 2, 5]])).shape
        torch.Size([2, 3, 8])
    """

    def __init__(
        self,
        network: BehaviorSupernet | BehaviorNetwork,
        choices: Sequence[BlockChoice] | None = None,
        *,
        allow_bidirectional: bool = False,
        input_dropout: float = 0.0,
        positions: int | None = None,
        final_norm: bool = False,
    ) -> None:
        super().__init__()
        if not 0.0 <= input_dropout < 1.0:
            raise ValueError(f"input_dropout must be in [0, 1), got {input_dropout}")
        if network.has_target:
            raise ValueError(
                "next-item retrieval has no target: build the network with has_target=False"
            )
        if not network.causal and not allow_bidirectional:
            raise ValueError(
                "a bidirectional network lets h_t read the item at t + 1 (the label of the "
                "per-position loss); build it with causal=True or pass allow_bidirectional=True"
            )
        self.network = network
        self.input_dropout = torch.nn.Dropout(input_dropout)
        self.output_dim = network.dim
        self.max_length = positions
        self.position: nn.Embedding | None = None
        if positions is not None:
            self.position = nn.Embedding(positions, network.dim)
            nn.init.xavier_normal_(self.position.weight)
        self.final_norm = nn.LayerNorm(network.dim) if final_norm else None
        self._choices: tuple[BlockChoice, ...] | None = None
        if isinstance(network, BehaviorSupernet) and choices is not None:
            self.choices = tuple(choices)

    @property
    def choices(self) -> tuple[BlockChoice, ...] | None:
        """The child that runs: the supernet's current choice, or the derived network's."""
        if isinstance(self.network, BehaviorNetwork):
            return self.network.choices
        return self._choices

    @choices.setter
    def choices(self, choices: Sequence[BlockChoice]) -> None:
        if isinstance(self.network, BehaviorNetwork):
            raise TypeError("a derived network's choices are fixed; derive a new one instead")
        self._choices = self.network._check_choices(choices)

    def derive(self) -> SearchedSequenceEncoder:
        """An encoder around ``network.derive(choices)`` (the current child, weights inherited)."""
        if not isinstance(self.network, BehaviorSupernet) or self._choices is None:
            raise TypeError("derive() needs a supernet with its choices set")
        derived = SearchedSequenceEncoder(
            self.network.derive(self._choices),
            allow_bidirectional=not self.network.causal,
            input_dropout=self.input_dropout.p,
            positions=self.max_length,
            final_norm=self.final_norm is not None,
        )
        if self.position is not None and derived.position is not None:
            derived.position.load_state_dict(self.position.state_dict())
        if self.final_norm is not None and derived.final_norm is not None:
            derived.final_norm.load_state_dict(self.final_norm.state_dict())
        return derived.train(self.training)

    def forward(self, item_ids: torch.Tensor, item_embeddings: torch.Tensor) -> torch.Tensor:
        mask = item_ids != PADDING_ID  # (B, N)
        x = item_embeddings
        if self.position is not None:
            length = item_ids.shape[1]
            recency = torch.arange(length - 1, -1, -1, device=item_ids.device)  # (N,)
            x = x * math.sqrt(self.output_dim) + self.position(recency)
        x = self.input_dropout(x) * mask.unsqueeze(-1).to(x.dtype)
        if isinstance(self.network, BehaviorNetwork):
            h = self.network(x, mask, None)
        elif self._choices is None:
            raise RuntimeError("set SearchedSequenceEncoder.choices before running a supernet")
        else:
            h = self.network(x, mask, None, self._choices)
        if self.final_norm is not None:
            h = self.final_norm(h) * mask.unsqueeze(-1).to(h.dtype)
        return h  # type: ignore[no-any-return]
