"""GRU4Rec (Hidasi et al. 2016): a GRU over the item embeddings, one hidden state per position.

GRU4Rec+ (Hidasi & Karatzoglou 2018) is the same network trained with sampled negatives; here
the loss is the trainer's (BCE with one negative per position, or sampled softmax), and the
output is scored against the shared item table.

Padding: the input windows are right-aligned (``[0, 0, a, b, c]``), but a GRU that ran over
the leading padding would start the real items from a bias-driven state that depends on the
amount of padding. The encoder therefore shifts every row left (``[a, b, c, 0, 0]``), runs the
GRU from a zero state, and shifts the outputs back: the hidden state at a real position depends
only on the real items up to it (causal and padding invariant). Padding outputs are zero.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from leanrec.data.sequential import PADDING_ID
from leanrec.models.seq.base import SequenceEncoder
from leanrec.options import check_at_least, check_dropout

__all__ = ["GRU4Rec", "GRU4RecConfig", "shift_to_left", "shift_to_right"]


@dataclass
class GRU4RecConfig:
    """Hyper-parameters of :class:`GRU4Rec`."""

    embedding_dim: int = 64
    """Item embedding width ``d`` (= output width, so outputs score against the item table)."""
    hidden_dim: int = 64
    """GRU state width; projected to ``embedding_dim`` by a linear layer when it differs."""
    num_layers: int = 1
    """Stacked GRU layers (GRU4Rec: 1)."""
    dropout: float = 0.25
    """Dropout on the input embeddings and on the GRU outputs (GRU4Rec tunes 0-0.5)."""

    def __post_init__(self) -> None:
        check_at_least(self, 1, "embedding_dim", "hidden_dim", "num_layers")
        check_dropout(self, "dropout")


def shift_to_left(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Move the last ``lengths[b]`` positions of row ``b`` to the front, ``(B, N, ...)``.

    Positions ``>= lengths[b]`` of the result hold copies of the last element (callers ignore
    them).
    """
    N = x.shape[1]
    shift = (N - lengths).unsqueeze(1)  # (B, 1): padding columns of each row
    index = (torch.arange(N, device=x.device).unsqueeze(0) + shift).clamp(max=N - 1)
    return _gather_positions(x, index)


def shift_to_right(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`shift_to_left`: the first ``lengths[b]`` positions go to the end;
    the leading ``N - lengths[b]`` positions are zero, ``(B, N, ...)``."""
    B, N = x.shape[:2]
    shift = (N - lengths).unsqueeze(1)
    positions = torch.arange(N, device=x.device).unsqueeze(0)
    index = (positions - shift).clamp(min=0)
    out = _gather_positions(x, index)
    real = (positions >= shift).reshape(B, N, *([1] * (x.ndim - 2)))
    return out * real


def _gather_positions(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``out[b, t] = x[b, index[b, t]]`` for ``x`` of shape ``(B, N, ...)``."""
    expanded = index.reshape(*index.shape, *([1] * (x.ndim - 2))).expand_as(x)
    return torch.gather(x, 1, expanded)


class GRU4Rec(SequenceEncoder):
    """GRU sequence encoder: ``(B, N)`` IDs + ``(B, N, d)`` embeddings -> ``(B, N, d)``.

    Example:
        >>> enc = GRU4Rec(GRU4RecConfig(embedding_dim=8, hidden_dim=16))
        >>> enc(torch.tensor([[0, 4, 2]]), torch.randn(1, 3, 8)).shape
        torch.Size([1, 3, 8])
    """

    def __init__(self, config: GRU4RecConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or GRU4RecConfig()
        self.output_dim = config.embedding_dim
        self.max_length = None
        self.input_dropout = nn.Dropout(config.dropout)
        self.gru = nn.GRU(
            config.embedding_dim, config.hidden_dim, num_layers=config.num_layers, batch_first=True
        )
        self.output_dropout = nn.Dropout(config.dropout)
        self.projection: nn.Module = (
            nn.Identity()
            if config.hidden_dim == config.embedding_dim
            else nn.Linear(config.hidden_dim, config.embedding_dim)
        )

    def forward(self, item_ids: torch.Tensor, item_embeddings: torch.Tensor) -> torch.Tensor:
        lengths = (item_ids != PADDING_ID).sum(dim=1)  # (B,)
        left = shift_to_left(self.input_dropout(item_embeddings), lengths)  # (B, N, d)
        states, _ = self.gru(left)  # (B, N, H): position t sees left[:, :t + 1] only
        hidden = self.projection(self.output_dropout(states))
        return shift_to_right(hidden, lengths)  # (B, N, d), zero at padding
