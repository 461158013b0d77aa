"""Sequential next-item models: a :class:`SequenceEncoder` inside a :class:`NextItemModel`.

Any encoder mapping item IDs ``(B, N)`` to hidden states ``(B, N, d)`` plugs into
:class:`NextItemModel`, :class:`~leanrec.train.sequential.SequentialTrainer` and the next-item
evaluation (:mod:`leanrec.evaluate.sampled`). Built-in encoders: :class:`GRU4Rec`,
:class:`SASRec`; build a model by name with :func:`build_next_item_model`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from leanrec.embeddings.base import TableFactory
from leanrec.models.seq.base import ITEM_INIT_STD, NextItemModel, SequenceEncoder
from leanrec.models.seq.gru4rec import GRU4Rec, GRU4RecConfig
from leanrec.models.seq.sasrec import SASRec, SASRecConfig
from leanrec.seeding import torch_seeded

SEQUENCE_ENCODERS: dict[str, tuple[type[SequenceEncoder], type[Any]]] = {
    "gru4rec": (GRU4Rec, GRU4RecConfig),
    "sasrec": (SASRec, SASRecConfig),
}
"""Built-in encoders by name: ``(encoder class, config class)``."""


def build_next_item_model(
    name: str,
    n_items: int,
    config: Any | dict[str, Any] | None = None,
    seed: int = 0,
    table_factory: TableFactory | None = None,
) -> NextItemModel:
    """A :class:`NextItemModel` with the built-in encoder ``name``, initialised from ``seed``.

    Args:
        name: ``"gru4rec"`` or ``"sasrec"``.
        n_items: number of real items ``I`` (the table gets ``I + 1`` rows).
        config: the encoder's config dataclass, a dict of its fields, or ``None`` (defaults).
        seed: seeds the initialisation without touching the global torch RNG.
        table_factory: builds the item table (default: full, normal(0, 0.02)).

    Example:
        >>> model = build_next_item_model("sasrec", 1000, {"embedding_dim": 32}, seed=1)
        >>> model.embedding_dim
        32
    """
    try:
        encoder_class, config_class = SEQUENCE_ENCODERS[name]
    except KeyError:
        raise ValueError(
            f"unknown sequence model {name!r}; known: {sorted(SEQUENCE_ENCODERS)}"
        ) from None
    if config is None:
        config = config_class()
    elif isinstance(config, dict):
        fields = {f.name for f in dataclasses.fields(config_class)}
        unknown = sorted(set(config) - fields)
        if unknown:
            raise ValueError(f"unknown {config_class.__name__} field(s) {unknown}")
        config = config_class(**config)
    with torch_seeded(seed):
        return NextItemModel(n_items, encoder_class(config), table_factory)


__all__ = [
    "ITEM_INIT_STD",
    "SEQUENCE_ENCODERS",
    "GRU4Rec",
    "GRU4RecConfig",
    "NextItemModel",
    "SASRec",
    "SASRecConfig",
    "SequenceEncoder",
    "build_next_item_model",
]
