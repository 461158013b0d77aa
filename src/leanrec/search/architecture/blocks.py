"""AMEIR Step 1 (Zhao et al., IJCAI 2021, Sec. 2.3): behaviour modelling as a one-shot supernet.

* :class:`BehaviorSupernet` is the one-shot model of Step 1: every block
  (:class:`BehaviorBlock`) holds one LayerNorm and *every* candidate layer; a forward pass gets
  the sampled :class:`~leanrec.models.ctr.ameir.architecture.BlockChoice` per block and runs only
  the chosen layer, so each candidate keeps its own weights across samples (weight sharing).
* :meth:`BehaviorSupernet.derive` builds the derived child network
  (:class:`~leanrec.models.ctr.ameir.blocks.BehaviorNetwork`, the model part) that inherits the
  supernet's weights ("Derivation", Sec. 2.3), so ``supernet.derive(c)(h, m, t) ==
  supernet(h, m, t, c)``.
* :class:`SupernetSequenceEncoder` runs a supernet's current child as a next-item
  :class:`~leanrec.models.seq.SequenceEncoder` (the paper's "sequential scenario") and derives
  the model's :class:`~leanrec.models.seq.searched.SearchedSequenceEncoder`.

Layers, padding and causal variants are those of :mod:`leanrec.models.ctr.ameir.blocks`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import torch
from torch import nn

from leanrec.models.ctr.ameir.architecture import BlockChoice
from leanrec.models.ctr.ameir.blocks import (
    ATTENTION_ACTIVATION,
    ATTENTION_DIMS,
    BehaviorNetwork,
    BehaviorStack,
    DerivedBlock,
    candidate_layers,
    check_mask,
    make_layer,
    residual_block,
    zero_padding,
)
from leanrec.models.seq.searched import SearchedSequenceEncoder
from leanrec.seeding import torch_seeded

__all__ = ["BehaviorBlock", "BehaviorSupernet", "SupernetSequenceEncoder"]


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
        return residual_block(h, mask, target, norm, self.layers[choice.layer], choice.activation)

    def chosen_modules(self, choice: BlockChoice) -> list[nn.Module]:
        """The modules ``choice`` runs (its layer; the norm if chosen; none for ``zero``)."""
        if choice.layer == "zero":
            return []
        modules: list[nn.Module] = [self.layers[choice.layer]]
        if choice.norm == "layernorm":
            modules.append(self.norm)
        return modules


class BehaviorSupernet(BehaviorStack):
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
        if n_blocks < 0:
            raise ValueError(f"n_blocks must be >= 0, got {n_blocks}")
        super().__init__(dim, has_target, causal)
        self.n_blocks = n_blocks
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
        self._build_readout(attention_dims, attention_activation, readout)

    @property
    def supernet_blocks(self) -> list[BehaviorBlock]:
        """The ``L_a`` blocks, typed."""
        return cast(list[BehaviorBlock], list(self.blocks))

    @property
    def candidate_layers(self) -> tuple[str, ...]:
        """The layer set of every block (no ``target_attention`` without a target)."""
        return candidate_layers(self.has_target)

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
        mask = check_mask(h0, mask)
        h = zero_padding(h0, mask)
        for block, choice in zip(self.blocks, choices):
            h = block(h, mask, target, choice)
        return h

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
class SupernetSequenceEncoder(SearchedSequenceEncoder):
    """A :class:`BehaviorSupernet` as a next-item encoder (the one-shot retrieval model).

    The child to run is the settable :attr:`choices` (set it before each training step or
    evaluation); :meth:`derive` gives the model part, a
    :class:`~leanrec.models.seq.searched.SearchedSequenceEncoder` around
    ``supernet.derive(choices)`` with the same state-dict keys.

    Args:
        supernet: built with ``has_target=False`` (and ``causal=True`` unless
            ``allow_bidirectional``).
        choices: the initial child (None: set :attr:`choices` before the first forward).
        allow_bidirectional, input_dropout, positions, final_norm: as
            :class:`~leanrec.models.seq.searched.SearchedSequenceEncoder`.

    Example:
        >>> from leanrec.models.seq import NextItemModel
        >>> supernet = BehaviorSupernet(8, 2, has_target=False, causal=True)
        >>> encoder = SupernetSequenceEncoder(supernet, [BlockChoice(layer="bigru")] * 2)
        >>> NextItemModel(50, encoder)(torch.tensor([[0, 3, 7], [1, 2, 5]])).shape
        torch.Size([2, 3, 8])
    """

    def __init__(
        self,
        supernet: BehaviorSupernet,
        choices: Sequence[BlockChoice] | None = None,
        *,
        allow_bidirectional: bool = False,
        input_dropout: float = 0.0,
        positions: int | None = None,
        final_norm: bool = False,
    ) -> None:
        super().__init__(
            supernet,
            allow_bidirectional=allow_bidirectional,
            input_dropout=input_dropout,
            positions=positions,
            final_norm=final_norm,
        )
        self._choices: tuple[BlockChoice, ...] | None = None
        if choices is not None:
            self.choices = tuple(choices)

    @property
    def supernet(self) -> BehaviorSupernet:
        """The network, typed."""
        return cast(BehaviorSupernet, self.network)

    @property
    def choices(self) -> tuple[BlockChoice, ...] | None:
        """The supernet's current child."""
        return self._choices

    @choices.setter
    def choices(self, choices: Sequence[BlockChoice]) -> None:
        self._choices = self.supernet._check_choices(choices)

    def derive(self) -> SearchedSequenceEncoder:
        """An encoder around ``supernet.derive(choices)`` (the current child, weights inherited)."""
        if self._choices is None:
            raise TypeError("derive() needs the supernet's choices set")
        derived = SearchedSequenceEncoder(
            self.supernet.derive(self._choices),
            allow_bidirectional=not self.causal,
            input_dropout=self.input_dropout.p,
            positions=self.max_length,
            final_norm=self.final_norm is not None,
        )
        if self.position is not None and derived.position is not None:
            derived.position.load_state_dict(self.position.state_dict())
        if self.final_norm is not None and derived.final_norm is not None:
            derived.final_norm.load_state_dict(self.final_norm.state_dict())
        return derived.train(self.training)

    def hidden_states(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if self._choices is None:
            raise RuntimeError("set SupernetSequenceEncoder.choices before running a supernet")
        return self.supernet(x, mask, None, self._choices)
