"""AMEIR Stage 1 (Zhao et al., IJCAI 2021, Sec. 2.1): the behaviour network of a searched model.

A behaviour network stacks ``L_a`` residual blocks over the embedded behaviour sequence
``H^a_0 = [e^a_1, ..., e^a_T]`` (Eq. 1)::

    H_l = Act_l(Layer_l(Norm_l(H_{l-1}))) + H_{l-1}

with ``Norm`` from :data:`~leanrec.models.ctr.ameir.architecture.NORMS`, ``Layer`` from
:data:`~leanrec.models.ctr.ameir.architecture.LAYERS` and ``Act`` from
:data:`~leanrec.models.ctr.ameir.architecture.ACTIVATIONS`, and reads the last hidden states out
as ``h^a = [Σ_i h_i, h_T, Σ_i a_i h_i]`` (sum pooling, the last state, DIN target attention;
:class:`SequenceReadout` takes any subset of these parts and mean pooling).

* :class:`BehaviorNetwork` is the network of one architecture, holding only its chosen
  operations (:class:`DerivedBlock` s). The search's one-shot supernet
  (:class:`leanrec.search.architecture.blocks.BehaviorSupernet`) runs the same layers and
  :func:`residual_block`, and derives these networks with its weights.
* The layers (:func:`make_layer`) and :func:`residual_block` are shared with that supernet, so
  a derived network computes exactly what the supernet computed for its child.

Shapes and padding: hidden states are ``(B, T, d)``, ``mask`` is bool ``(B, T)`` (True = real
behaviour). leanrec's sequences are right-aligned (``[0, 0, a, b, c]``: the most recent item is
in the last column), but no code relies on it: padded positions anywhere (leading padding or
holes) are treated as missing, and the order of the real positions is what counts. Every layer
zeroes its input at padded positions
before use and returns 0 there, so neither the values nor (up to float rounding) the
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

from collections.abc import Callable, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from leanrec.models.ctr.ameir.architecture import (
    ACTIVATIONS,
    LAYERS,
    NORMS,
    PAPER_READOUT,
    BlockChoice,
    check_readout,
)
from leanrec.models.ctr.din import ActivationUnit

__all__ = [
    "ATTENTION_ACTIVATION",
    "ATTENTION_DIMS",
    "BehaviorNetwork",
    "BehaviorStack",
    "BiGRULayer",
    "ConvLayer",
    "DerivedBlock",
    "PoolLayer",
    "SelfAttentionLayer",
    "SequenceReadout",
    "TargetAttentionLayer",
    "ZeroLayer",
    "candidate_layers",
    "check_mask",
    "make_activation",
    "make_layer",
    "make_norm",
    "residual_block",
    "zero_padding",
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
def zero_padding(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``x`` ``(B, T, d)`` with padded positions set to 0 (``masked_fill``: also clears NaN)."""
    return x.masked_fill(~mask.unsqueeze(-1), 0.0)


def check_mask(h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
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
        x = F.pad(zero_padding(h, mask).transpose(1, 2), self.padding)  # (B, d, T + span)
        return zero_padding(self.conv(x).transpose(1, 2), mask)


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
            x = zero_padding(h, mask).transpose(1, 2)
            total = self._pool(x, 0.0)  # (B, d, T): window sum / 3
            count = self._pool(real.transpose(1, 2).to(h.dtype), 0.0)  # (B, 1, T): real / 3
            pooled = (total / count.clamp_min(1e-6)).transpose(1, 2)
        return zero_padding(pooled, mask)


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
        x = zero_padding(h, mask)
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
        return zero_padding(out, mask)


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
        qkv = self.qkv(zero_padding(h, mask)).view(B, T, 3, self.num_heads, d // self.num_heads)
        query, key, value = qkv.permute(2, 0, 3, 1, 4)  # each (B, heads, T, d / heads)
        allowed = mask[:, None, None, :]  # (B, 1, 1, T): real keys
        eye = torch.eye(T, dtype=torch.bool, device=h.device)
        if self.causal:
            allowed = allowed & torch.ones_like(eye).tril()
        allowed = allowed | eye  # (B, 1, T, T)
        attended = F.scaled_dot_product_attention(query, key, value, attn_mask=allowed)
        out = self.out(attended.transpose(1, 2).reshape(B, T, d))
        return zero_padding(out, mask)


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
        x = zero_padding(h, mask)
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


def residual_block(
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
        return residual_block(h, mask, target, self.norm, self.layer, self.choice.activation)


class SequenceReadout(nn.Module):
    """``h^a``: the concatenated ``parts`` read from the hidden states (Sec. 2.1, Stage 1).

    Parts (:data:`~leanrec.models.ctr.ameir.architecture.READOUT_PARTS`): ``"sum"`` ``Σ_i h_i`` and
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
        mask = check_mask(h, mask)
        h = zero_padding(h, mask)
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
class BehaviorStack(nn.Module):
    """What the derived :class:`BehaviorNetwork` and the search's one-shot supernet share: the
    width ``d``, the target and causal flags, and the readout ``h^a`` after the blocks.

    Subclasses build their blocks, then :meth:`_build_readout` (blocks first: the random
    initialisation and the state-dict keys follow that order).
    """

    readout_layer: SequenceReadout

    def __init__(self, dim: int, has_target: bool, causal: bool) -> None:
        super().__init__()
        self.dim = dim
        self.has_target = has_target
        self.causal = causal

    def _build_readout(
        self,
        attention_dims: tuple[int, ...],
        attention_activation: str,
        readout: Sequence[str] | None,
    ) -> None:
        self.readout_layer = SequenceReadout(
            self.dim, self.has_target, attention_dims, attention_activation, readout
        )

    @property
    def readout_dim(self) -> int:
        """Width of :meth:`readout`: ``len(readout parts) · d``."""
        return self.readout_layer.output_dim

    def readout(
        self, h: torch.Tensor, mask: torch.Tensor, target: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``h^a`` ``(B, readout_dim)`` of hidden states ``(B, T, d)`` (see
        :class:`SequenceReadout`)."""
        return self.readout_layer(h, mask, target)  # type: ignore[no-any-return]


class BehaviorNetwork(BehaviorStack):
    """A derived behaviour network: ``L_a = len(choices)`` blocks with only the chosen ops.

    This is the final Stage-1 model (retrained after the search). Build one from scratch or
    with inherited weights by the search's
    :meth:`~leanrec.search.architecture.blocks.BehaviorSupernet.derive`.

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
        super().__init__(dim, has_target, causal)
        self.choices = tuple(choices)
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
        self._build_readout(attention_dims, attention_activation, readout)

    def forward(
        self, h0: torch.Tensor, mask: torch.Tensor, target: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Last hidden states ``H_{L_a}`` ``(B, T, d)`` of ``H_0`` ``(B, T, d)``; 0 at padding.

        Args:
            h0: behaviour embeddings (values at padded positions are ignored).
            mask: bool ``(B, T)``, True at real positions (right-aligned in leanrec).
            target: ``(B, d)`` target embedding, or ``None`` without target.
        """
        mask = check_mask(h0, mask)
        h = zero_padding(h0, mask)
        for block in self.blocks:
            h = block(h, mask, target)
        return h

    def parameter_count(self) -> int:
        """Number of parameters (only the chosen operations plus the readout)."""
        return sum(p.numel() for p in self.parameters())
