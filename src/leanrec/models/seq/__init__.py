"""Sequential next-item models: a :class:`SequenceEncoder` inside a :class:`NextItemModel`.

Any encoder mapping item IDs ``(B, N)`` to hidden states ``(B, N, d)`` plugs into
:class:`NextItemModel`, :class:`~leanrec.train.sequential.SequentialTrainer` and the next-item
evaluation (:mod:`leanrec.evaluate.sampled`). Built-in encoders: :class:`GRU4Rec`,
:class:`SASRec`; build a model by name with :func:`build_next_item_model`.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import torch

from leanrec.embeddings.base import TableFactory
from leanrec.embeddings.specs import SpecTableFactory
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


NEXT_ITEM_CHECKPOINT_FORMAT = "leanrec-next-item-v1"
"""``format`` of :func:`next_item_checkpoint` dicts."""


def _encoder_name(encoder: SequenceEncoder) -> str:
    for name, (encoder_class, _) in SEQUENCE_ENCODERS.items():
        if type(encoder) is encoder_class:
            return name
    raise TypeError(
        f"{type(encoder).__name__} is not a built-in encoder {sorted(SEQUENCE_ENCODERS)}"
    )


def next_item_checkpoint(model: NextItemModel, item_ids: Any = None) -> dict[str, Any]:
    """A model with a built-in encoder as plain values and tensors (``torch.load(
    weights_only=True)`` reads it back): encoder name and config, item count, table specs and
    weights, the window it reads (``history_length``, when set), and ``item_ids`` when given:
    the raw ID of each item ID ``1..I`` in order (the dataset vocabulary's raw IDs, as
    :class:`~leanrec.data.sequential.NextItemSplit` shifts them), so a served model takes and
    answers raw IDs."""
    encoder: Any = model.encoder
    state = {
        "format": NEXT_ITEM_CHECKPOINT_FORMAT,
        "encoder": _encoder_name(model.encoder),
        "config": dataclasses.asdict(encoder.config),
        "n_items": model.n_items,
        "tables": {name: table.spec() for name, table in model.embedding_tables().items()},
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }
    if item_ids is not None:
        state["item_ids"] = checked_item_ids(item_ids, model.n_items)
    if model.history_length is not None:
        state["history_length"] = int(model.history_length)
    return state


def checked_item_ids(item_ids: Any, n_items: int) -> list[Any]:
    """``item_ids`` as a plain list of ``n_items`` raw IDs (item ID ``i`` is entry ``i - 1``).

    Raises:
        ValueError: a count other than ``n_items``.
    """
    ids = np.asarray(item_ids).tolist()
    if len(ids) != n_items:
        raise ValueError(f"item_ids holds {len(ids)} raw IDs, the model has {n_items} items")
    return ids


def save_next_item_model(model: NextItemModel, path: str | Path, item_ids: Any = None) -> Path:
    """Write :func:`next_item_checkpoint` to ``path`` (read it with
    :func:`leanrec.models.load_model`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(next_item_checkpoint(model, item_ids), path)
    return path


def next_item_model_from_checkpoint(state: dict[str, Any]) -> NextItemModel:
    """Rebuild a model from :func:`next_item_checkpoint` output."""
    if state.get("format") != NEXT_ITEM_CHECKPOINT_FORMAT:
        raise ValueError(f"not a leanrec next-item checkpoint (format {state.get('format')!r})")
    encoder_class, config_class = SEQUENCE_ENCODERS[state["encoder"]]
    factory = SpecTableFactory({"item": state["tables"]["item_table"]})
    model = NextItemModel(
        int(state["n_items"]), encoder_class(config_class(**state["config"])), factory
    )
    model.load_state_dict(state["state_dict"])
    model.history_length = state.get("history_length")
    return model


__all__ = [
    "ITEM_INIT_STD",
    "NEXT_ITEM_CHECKPOINT_FORMAT",
    "SEQUENCE_ENCODERS",
    "GRU4Rec",
    "GRU4RecConfig",
    "NextItemModel",
    "SASRec",
    "SASRecConfig",
    "SequenceEncoder",
    "build_next_item_model",
    "next_item_checkpoint",
    "next_item_model_from_checkpoint",
    "save_next_item_model",
]
