"""The CTR model contract: a :class:`BehaviorBatch` in, one logit per sample out.

Every CTR model holds a :class:`~leanrec.models.ctr.inputs.BehaviorEmbedder` (its embedding
tables) and implements :meth:`CTRModel.logits` on the embedded batch, so all models see the
same fields, history and target vectors, and a table swapped in by an embedding-size policy
(:meth:`CTRModel.replace_table`) reaches every model the same way.
"""

from __future__ import annotations

import dataclasses
from abc import abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from leanrec.data.behavior import BehaviorBatch, FeatureMap
from leanrec.embeddings.base import EmbeddingTable, TableFactory
from leanrec.models.ctr.inputs import BehaviorEmbedder, EmbeddedBatch, Pooling
from leanrec.models.tables import TableOwner

CTR_CHECKPOINT_FORMAT = "leanrec.ctr_model/1"


@dataclass
class CTRConfig:
    """Configuration shared by every CTR model (DNN, Wide&Deep and DeepFM use it as is)."""

    embedding_dim: int = 16
    """``d``, width of every ID vector (one table per vocabulary)."""
    mlp_dims: tuple[int, ...] = (200, 80)
    """Hidden widths of the deep tower (DIN paper: 200-80); a linear layer to 1 logit follows."""
    activation: str = "relu"
    """Activation of the deep tower: relu, prelu, dice, sigmoid, tanh, leaky_relu, identity."""
    dropout: float = 0.0
    """Dropout after every hidden layer of the deep tower."""
    history_pooling: Pooling = "mean"
    """How non-attention models pool the history into one vector: "mean" (YouTube DNN) or "sum"."""
    init_std: float = 1e-4
    """Normal init std of the default ID tables and first-order weights (DeepCTR's default)."""

    def __post_init__(self) -> None:
        self.mlp_dims = tuple(int(w) for w in self.mlp_dims)
        if self.embedding_dim < 1:
            raise ValueError(f"embedding_dim must be >= 1, got {self.embedding_dim}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must lie in [0, 1), got {self.dropout}")
        if self.history_pooling not in ("mean", "sum"):
            raise ValueError(
                f"history_pooling must be 'mean' or 'sum', got {self.history_pooling!r}"
            )


class CTRModel(nn.Module, TableOwner):
    """Base class of the CTR models.

    Subclasses set ``name`` and ``config_class`` (and ``uses_first_order`` when they have a
    linear part) and implement :meth:`logits`.

    Args:
        feature_map: field layout of the data.
        config: the model's config (its ``config_class`` defaults when None).
        table_factory: builds the ``d``-wide ID tables (full tables by default).
    """

    name: ClassVar[str] = "ctr"
    config_class: ClassVar[type[CTRConfig]] = CTRConfig
    uses_first_order: ClassVar[bool] = False

    def __init__(
        self,
        feature_map: FeatureMap,
        config: CTRConfig | None = None,
        table_factory: TableFactory | None = None,
    ) -> None:
        super().__init__()
        config = config if config is not None else self.config_class()
        if not isinstance(config, self.config_class):
            raise TypeError(
                f"{type(self).__name__} needs a {self.config_class.__name__}, "
                f"got {type(config).__name__}"
            )
        self.config = config
        self.feature_map = feature_map
        self.embedder = BehaviorEmbedder(
            feature_map,
            config.embedding_dim,
            table_factory=table_factory,
            first_order=self.uses_first_order,
            init_std=config.init_std,
        )
        self._build_layers()

    def _build_layers(self) -> None:
        """Hook for a subclass's layers, run right after the embedder is built (so the random
        initialisation follows the order embedder, layers); subclasses that need constructor
        arguments of their own build them in their ``__init__`` instead."""

    # ------------------------------------------------------------------ contract
    @abstractmethod
    def logits(self, inputs: EmbeddedBatch) -> torch.Tensor:
        """Logits ``(B,)`` of an embedded batch."""

    def forward(self, batch: BehaviorBatch) -> torch.Tensor:
        """Click logits ``(B,)`` of ``batch`` (apply a sigmoid for probabilities)."""
        return self.logits(self.embedder(batch))

    def forward_with_l2(self, batch: BehaviorBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits ``(B,)`` and the scalar embedding penalty ``Σ |e|² / 2 / B`` of the batch."""
        inputs = self.embedder(batch, with_l2=True)
        return self.logits(inputs), inputs.l2

    @torch.no_grad()
    def predict_proba(self, batch: BehaviorBatch) -> torch.Tensor:
        """Click probabilities ``(B,)`` (in the model's current train/eval mode)."""
        return torch.sigmoid(self(batch))

    # ------------------------------------------------------------------ shared pieces
    @property
    def num_fields(self) -> int:
        """``F'``: categorical fields + pooled target tags."""
        return self.embedder.num_fields

    def linear_logit(self, inputs: EmbeddedBatch) -> torch.Tensor:
        """Sum of the first-order weights ``(B,)`` (the wide / linear part)."""
        if inputs.first_order is None:
            raise RuntimeError(f"{self.name} was built without first-order weights")
        return inputs.first_order.sum(dim=1)

    # ------------------------------------------------------------------ tables
    def embedding_tables(self) -> dict[str, EmbeddingTable]:
        """The ``d``-wide ID tables by vocabulary name (``user_id``, ``item_id``, ``genres``...)."""
        return self.embedder.embedding_tables()

    def _set_table(self, name: str, table: EmbeddingTable) -> None:
        self.embedder.tables[name] = table

    def parameter_counts(self) -> dict[str, int]:
        """``embedding`` (ID tables), ``first_order`` (1-wide tables), ``dense`` (the rest)."""
        tables = {id(p) for t in self.embedding_tables().values() for p in t.parameters()}
        linear = {
            id(p) for t in self.embedder.first_order_tables().values() for p in t.parameters()
        }
        dense = sum(p.numel() for p in self.parameters() if id(p) not in tables | linear)
        first = sum(t.num_parameters() for t in self.embedder.first_order_tables().values())
        return {"embedding": self.embedding_parameters(), "first_order": first, "dense": dense}

    # ------------------------------------------------------------------ persistence
    def checkpoint(self) -> dict[str, Any]:
        """A dict of tensors and plain values, loadable with ``torch.load(weights_only=True)``."""
        return {
            "format": CTR_CHECKPOINT_FORMAT,
            "model": self.name,
            "feature_map": self.feature_map.to_json(),
            "config": dataclasses.asdict(self.config),
            "tables": {name: table.spec() for name, table in self.embedding_tables().items()},
            "state_dict": {k: v.detach().cpu() for k, v in self.state_dict().items()},
        }

    def save(self, path: str | Path) -> Path:
        """Write :meth:`checkpoint` to ``path``; read back with
        :func:`leanrec.models.ctr.load_ctr_model`."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(self.checkpoint(), path)
        return path


__all__ = ["CTR_CHECKPOINT_FORMAT", "CTRConfig", "CTRModel"]
