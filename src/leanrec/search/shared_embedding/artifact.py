"""Saving and loading a stream model with its assignment, for serving.

The file holds the base model's name and build options, each stream table's spec
(:meth:`~leanrec.embeddings.base.EmbeddingTable.spec`: kind and hyper-parameters; the
hierarchy's positions, counts and rows are in the state dict) and the raw IDs of each field in
index order. Loading rebuilds every table from :mod:`leanrec.embeddings` alone (no agent is
needed to serve: positions are state of the tables). An ID the model has never seen is served
by adding it to the field (:meth:`LoadedStreamModel.index_of` gives it the next index, and
``extend_ids`` makes it readable): it reads level 1's shared vector, i.e. cold start.

Example:
    >>> loaded = load_stream_model("runs/shared-embedding/model_autoassign_bce.pt")
    >>> loaded.predict({"user": ["u-never-seen"], "item": [1193]})
    array([0.61...])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from leanrec.data.errors import DataError
from leanrec.embeddings.base import EmbeddingTable
from leanrec.embeddings.specs import table_from_spec
from leanrec.models.stream import StreamModel, build_stream_model
from leanrec.train.checkpoint import save_atomic

STREAM_MODEL_FORMAT = "leanrec.stream_model/1"


def save_stream_model(
    model: StreamModel,
    path: str | Path,
    *,
    name: str,
    embedding_dim: int,
    options: Mapping[str, Any],
    objective: str,
    rating_offset: float | None,
    raw_ids: Mapping[str, Sequence[Any]],
) -> Path:
    """Write ``model`` (its tables with their assignment) so :func:`load_stream_model` can
    rebuild it; ``raw_ids[field][i]`` is the raw ID of index ``i``."""
    state = {
        "format": STREAM_MODEL_FORMAT,
        "model": name,
        "fields": list(model.stream_fields),
        "embedding_dim": embedding_dim,
        "options": dict(options),
        "objective": objective,
        "rating_offset": rating_offset,
        "tables": {n: t.spec() for n, t in model.id_tables().items()},
        "raw_ids": {f: [_plain(v) for v in ids] for f, ids in raw_ids.items()},
        "state_dict": model.state_dict(),
    }
    return save_atomic(state, Path(path))


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


@dataclass
class LoadedStreamModel:
    """A stream model read back: ``model`` scores index tensors; :meth:`predict` raw IDs."""

    model: StreamModel
    objective: str
    rating_offset: float | None
    raw_ids: dict[str, list[Any]]
    _index: dict[str, dict[Any, int]] = field(default_factory=dict, repr=False)

    def index_of(self, field_name: str, raw: Sequence[Any]) -> torch.Tensor:
        """Indices of raw IDs; an unknown ID gets the next free index (and the tables accept
        it: it reads the shared vector a new ID reads, level 1 in a hierarchy)."""
        known = self._index.setdefault(
            field_name, {v: i for i, v in enumerate(self.raw_ids[field_name])}
        )
        out = []
        for value in raw:
            if value not in known:
                known[value] = len(self.raw_ids[field_name])
                self.raw_ids[field_name].append(value)
            out.append(known[value])
        self.model.extend_ids({f: len(ids) for f, ids in self.raw_ids.items()})
        return torch.tensor(out, dtype=torch.int64)

    @torch.no_grad()
    def predict(self, raw: Mapping[str, Sequence[Any]]) -> np.ndarray:
        """P(label = 1) (``bce``) or the rating (``mse``) per event, raw IDs per field."""
        ids = {f: self.index_of(f, values) for f, values in raw.items()}
        self.model.eval()
        logits = self.model(ids).double()
        if self.objective == "bce":
            return torch.sigmoid(logits).numpy()
        return (logits + (self.rating_offset or 0.0)).numpy()


def load_stream_model(path: str | Path) -> LoadedStreamModel:
    """Rebuild a model written by :func:`save_stream_model`."""
    path = Path(path)
    if not path.is_file():
        raise DataError("stream model file not found", path=path)
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or state.get("format") != STREAM_MODEL_FORMAT:
        raise DataError(f"not a leanrec stream model (format {STREAM_MODEL_FORMAT})", path=path)
    specs: dict[str, dict[str, Any]] = state["tables"]

    def rebuild(name: str, num_embeddings: int, embedding_dim: int) -> EmbeddingTable:
        return table_from_spec(specs[name], num_embeddings, embedding_dim)

    model = build_stream_model(
        state["model"],
        tuple(state["fields"]),
        embedding_dim=state["embedding_dim"],
        table_factory=rebuild,
        **state["options"],
    )
    model.load_state_dict(state["state_dict"])
    return LoadedStreamModel(
        model,
        state["objective"],
        state["rating_offset"],
        {f: list(v) for f, v in state["raw_ids"].items()},
    )


__all__ = ["STREAM_MODEL_FORMAT", "LoadedStreamModel", "load_stream_model", "save_stream_model"]
