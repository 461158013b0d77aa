"""SASRec (Kang & McAuley 2018): causal self-attention over the item sequence.

Per block (as in the SASRec reference code; pre-norm queries, post-attention norm)::

    q = LayerNorm(x)
    x = q + MultiHeadAttention(q, x, x, mask)          # causal, padding keys masked
    x = LayerNorm(x)
    x = x + Dropout(W2 · Dropout(ReLU(W1 · x)))         # point-wise feed-forward
    x = x * real                                        # padding positions back to zero

with input ``x = Dropout(sqrt(d) · E[ids] + P[recency]) * real`` and a final LayerNorm. The
learned position ``recency = N - 1 - column`` counts from the most recent column of the
right-aligned window; for a fixed ``N`` it is SASRec's absolute position, and it makes the real
positions' outputs independent of the amount of left padding.

Attention mask: query ``i`` may attend key ``j`` iff ``j <= i`` (causal) and key ``j`` is a real
item; a padding query attends only to itself so that no softmax row is empty.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from leanrec.data.sequential import PADDING_ID
from leanrec.models.seq.base import SequenceEncoder
from leanrec.options import check_at_least, check_dropout

__all__ = ["CausalSelfAttention", "SASRec", "SASRecBlock", "SASRecConfig"]


@dataclass
class SASRecConfig:
    """Hyper-parameters of :class:`SASRec` (defaults: SASRec's Beauty-style sparse setting)."""

    embedding_dim: int = 64
    """Item and position embedding width ``d`` (SASRec: 50; 64 here)."""
    max_length: int = 50
    """Size of the positional table: the longest window ``N`` (SASRec: 50 on Amazon data)."""
    num_blocks: int = 2
    """Self-attention blocks ``b`` (SASRec: 2)."""
    num_heads: int = 1
    """Attention heads (SASRec: 1); must divide ``embedding_dim``."""
    dropout: float = 0.5
    """Dropout on the input, attention weights and feed-forward (SASRec: 0.5 on sparse data)."""

    def __post_init__(self) -> None:
        check_at_least(self, 1, "embedding_dim", "max_length", "num_blocks", "num_heads")
        check_dropout(self, "dropout")


class CausalSelfAttention(nn.Module):
    """Multi-head attention with separate query input: ``(B, N, d)`` -> ``(B, N, d)``."""

    def __init__(self, dim: int, num_heads: int, dropout: float) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"num_heads={num_heads} must divide embedding_dim={dim}")
        self.num_heads = num_heads
        self.dropout = dropout
        self.query = nn.Linear(dim, dim)
        self.key = nn.Linear(dim, dim)
        self.value = nn.Linear(dim, dim)
        self.out = nn.Linear(dim, dim)

    def forward(
        self, queries: torch.Tensor, keys: torch.Tensor, allowed: torch.Tensor
    ) -> torch.Tensor:
        """Args: ``queries``/``keys`` ``(B, N, d)``; ``allowed`` bool ``(B, 1, N, N)``, true
        where query ``i`` may attend key ``j``. Returns ``(B, N, d)``."""
        B, N, d = queries.shape
        h = self.num_heads

        def heads(x: torch.Tensor) -> torch.Tensor:
            return x.reshape(B, N, h, d // h).transpose(1, 2)  # (B, h, N, d / h)

        attended = F.scaled_dot_product_attention(
            heads(self.query(queries)),
            heads(self.key(keys)),
            heads(self.value(keys)),
            attn_mask=allowed,
            dropout_p=self.dropout if self.training else 0.0,
        )
        return self.out(attended.transpose(1, 2).reshape(B, N, d))


class SASRecBlock(nn.Module):
    """One self-attention block (see the module docstring): ``(B, N, d)`` -> ``(B, N, d)``."""

    def __init__(self, dim: int, num_heads: int, dropout: float) -> None:
        super().__init__()
        self.attention_norm = nn.LayerNorm(dim, eps=1e-8)
        self.attention = CausalSelfAttention(dim, num_heads, dropout)
        self.feed_forward_norm = nn.LayerNorm(dim, eps=1e-8)
        self.feed_forward = nn.Sequential(
            nn.Linear(dim, dim),
            nn.Dropout(dropout),
            nn.ReLU(),
            nn.Linear(dim, dim),
            nn.Dropout(dropout),
        )

    def forward(self, x: torch.Tensor, allowed: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        """``x`` ``(B, N, d)``, ``allowed`` ``(B, 1, N, N)``, ``real`` ``(B, N, 1)`` float."""
        q = self.attention_norm(x)
        x = q + self.attention(q, x, allowed)
        x = self.feed_forward_norm(x)
        x = x + self.feed_forward(x)
        return x * real


class SASRec(SequenceEncoder):
    """SASRec encoder: ``(B, N)`` IDs + ``(B, N, d)`` embeddings -> ``(B, N, d)``.

    Example:
        >>> enc = SASRec(SASRecConfig(embedding_dim=8, max_length=5)).eval()
        >>> enc(torch.tensor([[0, 4, 2]]), torch.randn(1, 3, 8)).shape
        torch.Size([1, 3, 8])
    """

    def __init__(self, config: SASRecConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or SASRecConfig()
        d = config.embedding_dim
        self.output_dim = d
        self.max_length = config.max_length
        self.position = nn.Embedding(config.max_length, d)
        nn.init.xavier_normal_(self.position.weight)
        self.input_dropout = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(
            SASRecBlock(d, config.num_heads, config.dropout) for _ in range(config.num_blocks)
        )
        self.final_norm = nn.LayerNorm(d, eps=1e-8)

    def forward(self, item_ids: torch.Tensor, item_embeddings: torch.Tensor) -> torch.Tensor:
        length = item_ids.shape[1]
        if length > self.config.max_length:
            raise ValueError(
                f"sequence length {length} exceeds max_length {self.config.max_length}"
            )
        real_bool = item_ids != PADDING_ID  # (B, N)
        real = real_bool.unsqueeze(-1).to(item_embeddings.dtype)  # (B, N, 1)
        recency = torch.arange(length - 1, -1, -1, device=item_ids.device)  # (N,)
        x = item_embeddings * math.sqrt(self.output_dim) + self.position(recency)
        x = self.input_dropout(x) * real
        causal = torch.ones(length, length, dtype=torch.bool, device=item_ids.device).tril()
        diagonal = torch.eye(length, dtype=torch.bool, device=item_ids.device)
        allowed = causal & (real_bool.unsqueeze(1) | diagonal)  # (B, N_query, N_key)
        allowed = allowed.unsqueeze(1)  # (B, 1, N, N): broadcast over heads
        for block in self.blocks:
            x = block(x, allowed, real)
        return self.final_norm(x)
