"""A searched next-item model: an AMEIR behaviour network as a :class:`SequenceEncoder`.

AMEIR's sequential scenario (Zhao et al., IJCAI 2021, Sec. 4) searches only Stage 1: ``L_a``
residual blocks over the item embeddings (:class:`~leanrec.models.ctr.ameir.blocks.
BehaviorNetwork`, built causal and without a target), scored against the shared item table as
every :class:`~leanrec.models.seq.base.NextItemModel` is. The search
(:mod:`leanrec.search.architecture.retrieval`) writes the architecture as JSON
(:func:`build_searched_model` rebuilds the model from it); a trained model is saved with
:func:`save_searched_model` and read back by :func:`load_searched_model` (or
:func:`leanrec.models.load_model`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

from leanrec.data.sequential import PADDING_ID
from leanrec.model_files import read_torch_file
from leanrec.models.ctr.ameir.architecture import BlockChoice
from leanrec.models.ctr.ameir.blocks import BehaviorNetwork
from leanrec.models.seq.base import NextItemModel, SequenceEncoder
from leanrec.seeding import torch_seeded

__all__ = [
    "SEARCHED_SEQUENCE_FORMAT",
    "BehaviorStack",
    "SearchedSequenceEncoder",
    "build_searched_model",
    "load_searched_model",
    "save_searched_model",
    "searched_model_from_checkpoint",
]

SEARCHED_SEQUENCE_FORMAT = "next_item"
"""The ``task`` key of a searched next-item architecture (and of its saved model)."""


class BehaviorStack(Protocol):
    """What the encoder reads from its network: a derived :class:`BehaviorNetwork` or the
    search's supernet."""

    dim: int
    has_target: bool
    causal: bool


class SearchedSequenceEncoder(SequenceEncoder):
    """A behaviour network as a next-item :class:`~leanrec.models.seq.SequenceEncoder`: item
    embeddings ``(B, N, d)`` -> hidden states ``(B, N, d)`` (0 at padding), no target.

    Causality: the encoder contract (and the per-position loss of the sequential trainer, where
    ``h_t`` is scored against the item at ``t + 1``) needs ``h_t`` to see positions ``<= t``
    only, so the network must be built with ``causal=True``. AMEIR's bidirectional layers
    (``causal=False``) predict from the whole input and are only sound when the loss is taken at
    the last position alone; pass ``allow_bidirectional=True`` to use them that way.

    Args:
        network: a :class:`BehaviorNetwork` with ``has_target=False`` (the search's
            ``SupernetSequenceEncoder`` passes its supernet here).
        allow_bidirectional: accept a non-causal network (see above).
        input_dropout: dropout on the item embeddings entering the network (training only;
            padding stays 0).
        positions: with a value ``N``, a learned embedding of each position's recency
            (``N - 1 - column``, as SASRec: padding-invariant) is added to the scaled item
            embeddings ``sqrt(d) · e``; sequences are then limited to ``N`` items. None: no
            positions (AMEIR's blocks alone; convolutions, pooling and the GRU still see order).
        final_norm: a LayerNorm on the hidden states (SASRec's last layer).

    Example:
        >>> network = BehaviorNetwork(8, [BlockChoice(layer="bigru")] * 2, False, causal=True)
        >>> NextItemModel(50, SearchedSequenceEncoder(network))(
        ...     torch.tensor([[0, 3, 7], [1, 2, 5]])
        ... ).shape
        torch.Size([2, 3, 8])
    """

    def __init__(
        self,
        network: BehaviorStack,
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
        self.network: nn.Module = network  # type: ignore[assignment]
        self.causal = network.causal
        self.input_dropout = torch.nn.Dropout(input_dropout)
        self.output_dim = network.dim
        self.max_length = positions
        self.position: nn.Embedding | None = None
        if positions is not None:
            self.position = nn.Embedding(positions, network.dim)
            nn.init.xavier_normal_(self.position.weight)
        self.final_norm = nn.LayerNorm(network.dim) if final_norm else None

    @property
    def choices(self) -> tuple[BlockChoice, ...] | None:
        """The blocks that run (fixed for a derived network)."""
        network: BehaviorNetwork = self.network  # type: ignore[assignment]
        return network.choices

    @choices.setter
    def choices(self, choices: Sequence[BlockChoice]) -> None:
        raise TypeError("a derived network's choices are fixed; derive a new one instead")

    def backbone(self) -> dict[str, Any]:
        """The settings besides the blocks (:func:`build_searched_model` reads them)."""
        return {
            "embedding_dim": self.output_dim,
            "input_dropout": self.input_dropout.p,
            "positions": self.position is not None,
            "final_norm": self.final_norm is not None,
        }

    def hidden_states(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The network's last hidden states ``(B, N, d)`` of inputs ``x`` ``(B, N, d)``."""
        return self.network(x, mask, None)  # type: ignore[no-any-return]

    def forward(self, item_ids: torch.Tensor, item_embeddings: torch.Tensor) -> torch.Tensor:
        mask = item_ids != PADDING_ID  # (B, N)
        x = item_embeddings
        if self.position is not None:
            length = item_ids.shape[1]
            recency = torch.arange(length - 1, -1, -1, device=item_ids.device)  # (N,)
            x = x * math.sqrt(self.output_dim) + self.position(recency)
        x = self.input_dropout(x) * mask.unsqueeze(-1).to(x.dtype)
        h = self.hidden_states(x, mask)
        if self.final_norm is not None:
            h = self.final_norm(h) * mask.unsqueeze(-1).to(h.dtype)
        return h


def build_searched_model(
    n_items: int, architecture: dict[str, Any], max_length: int = 50, seed: int = 0
) -> NextItemModel:
    """A fresh next-item model of a saved search result (the search's
    ``RetrievalSearchResult.architecture_json``), for retraining from scratch
    (``leanrec train --architecture``).

    Args:
        n_items: number of real items ``I``.
        architecture: ``{"task": "next_item", "blocks": [...]}`` plus the optional backbone
            settings ``embedding_dim`` (64), ``input_dropout`` (0), ``positions`` (False),
            ``final_norm`` (False).
        max_length: the longest window ``N`` (the size of the position table, when any).
        seed: seeds the initialisation without touching the global torch RNG.
    """
    if architecture.get("task") != SEARCHED_SEQUENCE_FORMAT or "blocks" not in architecture:
        raise ValueError(
            "not a next-item architecture: expected the JSON written by the Beauty architecture "
            "experiment (keys 'task': 'next_item' and 'blocks')"
        )
    choices = tuple(BlockChoice(**block) for block in architecture["blocks"])
    dim = int(architecture.get("embedding_dim", 64))
    with torch_seeded(seed):
        network = BehaviorNetwork(dim, choices, has_target=False, causal=True, readout=("last",))
        encoder = SearchedSequenceEncoder(
            network,
            input_dropout=float(architecture.get("input_dropout", 0.0)),
            positions=max_length if architecture.get("positions", False) else None,
            final_norm=bool(architecture.get("final_norm", False)),
        )
        return NextItemModel(n_items, encoder)


def save_searched_model(
    model: NextItemModel, architecture: dict[str, Any], path: str | Path, item_ids: Any = None
) -> Path:
    """Write ``{"architecture": ..., "model": state_dict}`` (what ``leanrec train
    --architecture`` saves for a next-item model) to ``path``, with ``item_ids`` (the raw ID of
    each item ID ``1..I``) when given and the window the model reads (``history_length``)
    when set."""
    from leanrec.models.seq import checked_item_ids

    state: dict[str, Any] = {"architecture": architecture, "model": model.state_dict()}
    if item_ids is not None:
        state["item_ids"] = checked_item_ids(item_ids, model.n_items)
    if model.history_length is not None:
        state["history_length"] = int(model.history_length)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return path


def searched_model_from_checkpoint(state: dict[str, Any]) -> NextItemModel:
    """Rebuild a searched next-item model from :func:`save_searched_model`'s dict.

    The item count and the window ``N`` come from the weights' shapes (the item table has
    ``I + 1`` rows; the position table, when any, ``N``).
    """
    architecture, weights = state["architecture"], state["model"]
    n_items = int(weights["item_table.weight"].shape[0]) - 1
    positions = weights.get("encoder.position.weight")
    max_length = 50 if positions is None else int(positions.shape[0])
    model = build_searched_model(n_items, architecture, max_length)
    model.load_state_dict(weights)
    model.history_length = state.get("history_length")
    return model


def load_searched_model(path: str | Path) -> NextItemModel:
    """Load a model written by :func:`save_searched_model`."""
    state = read_torch_file(path)
    return searched_model_from_checkpoint(state)
