"""Saving and loading a :class:`~leanrec.models.stream.StreamModel` with its raw IDs, for serving.

The file (format ``"leanrec.stream_model/1"``) holds the base model's name and build options,
each stream table's spec (:meth:`~leanrec.embeddings.base.EmbeddingTable.spec`: kind and
hyper-parameters; a hierarchy's positions, counts and rows are in the state dict) and the raw
IDs of each field in index order. Loading rebuilds every table from :mod:`leanrec.embeddings`
alone: whatever decided the tables' assignment during training (an agent, a threshold) is not
needed to serve, because positions and rows are state of the tables.

An ID the model has never seen is served by adding it to its field's vocabulary
(:meth:`LoadedStreamModel.index_of` gives it the next index and ``extend_ids`` makes it
readable): it reads the table's shared vector (level 1 of a hierarchical table, the fallback
row of the others), i.e. cold start; :meth:`LoadedStreamModel.is_known` tells such IDs apart.
:func:`leanrec.models.load_model` reads these files too (family ``"stream"``).

Example:
    >>> loaded = load_stream_model("runs/shared-embedding/model_autoassign_bce.pt")
    >>> loaded.predict({"user": ["u-never-seen"], "item": [1193]})
    array([0.61...])
    >>> loaded.is_known("user", ["u-never-seen"])
    array([False])
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

__all__ = [
    "STREAM_MODEL_FORMAT",
    "LoadedStreamModel",
    "load_stream_model",
    "save_stream_model",
    "stream_model_from_checkpoint",
]

STREAM_MODEL_FORMAT = "leanrec.stream_model/1"


# ---------------------------------------------------------------------------------- saving
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
    rebuild it.

    Args:
        model: the stream model, e.g. a stream trainer's model at the end of the stream.
        path: the ``.pt`` file to write (atomically: a kill never leaves a torn file).
        name: base model name for :func:`~leanrec.models.stream.build_stream_model`.
        embedding_dim: ``d`` of the ID tables.
        options: the other build options of the base model (its config fields).
        objective: ``"bce"`` (the model's logit is P(label = 1) before the sigmoid) or
            ``"mse"`` (a rating minus ``rating_offset``).
        rating_offset: what ``mse`` logits are offset by (``None`` for ``bce``).
        raw_ids: ``raw_ids[field][i]`` is the raw ID of index ``i`` of stream field ``field``.
    """
    # leanrec.train imports leanrec.models when it is imported: import its writer when called.
    from leanrec.train.checkpoint import save_atomic

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
    """A numpy scalar as its Python value (``weights_only`` loading refuses numpy objects)."""
    return value.item() if isinstance(value, np.generic) else value


# ---------------------------------------------------------------------------------- serving
@dataclass
class LoadedStreamModel:
    """A stream model read back: ``model`` scores index tensors, :meth:`predict` raw IDs.

    Attributes:
        model: the stream model; its tables accept every index of :attr:`raw_ids`.
        objective: ``"bce"`` or ``"mse"`` (see :func:`save_stream_model`).
        rating_offset: added to ``mse`` logits to give ratings.
        raw_ids: raw IDs per field in index order; grows as unseen IDs are served.
        vocabularies: raw ID -> index per field (the inverse of :attr:`raw_ids`, grown with it).
        known_sizes: vocabulary size per field as loaded: indices below it are the IDs the
            model was saved with, those from it on were first met while serving.
    """

    model: StreamModel
    objective: str
    rating_offset: float | None
    raw_ids: dict[str, list[Any]]
    vocabularies: dict[str, dict[Any, int]] = field(init=False, repr=False)
    known_sizes: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        self.vocabularies = {
            f: {raw: i for i, raw in enumerate(ids)} for f, ids in self.raw_ids.items()
        }
        self.known_sizes = {f: len(ids) for f, ids in self.raw_ids.items()}

    def index_of(self, field_name: str, raw: Sequence[Any]) -> torch.Tensor:
        """Indices ``(B,)`` int64 of raw IDs; an unknown ID gets the next free index (and the
        tables accept it: it reads the shared vector a new ID reads, level 1 in a hierarchy)."""
        vocabulary = self.vocabularies[field_name]
        raw_ids = self.raw_ids[field_name]
        out = []
        for value in raw:
            if value not in vocabulary:
                vocabulary[value] = len(raw_ids)
                raw_ids.append(value)
            out.append(vocabulary[value])
        self.model.extend_ids({f: len(ids) for f, ids in self.raw_ids.items()})
        return torch.tensor(out, dtype=torch.int64)

    def is_known(self, field_name: str, raw: Sequence[Any]) -> np.ndarray:
        """Whether each raw ID was in the model's vocabulary when it was saved, bool ``(B,)``.

        ``False`` flags a cold ID: it reads the table's shared vector (level 1 of a hierarchy,
        the fallback row of the other tables), also after :meth:`index_of` has given it an
        index."""
        vocabulary, known = self.vocabularies[field_name], self.known_sizes[field_name]
        return np.array([vocabulary.get(value, known) < known for value in raw], dtype=bool)

    @torch.no_grad()
    def predict(self, raw: Mapping[str, Sequence[Any]]) -> np.ndarray:
        """P(label = 1) (``bce``) or the rating (``mse``) per event, float64 ``(B,)``, from raw
        IDs per field (each a sequence of length ``B``)."""
        ids = {f: self.index_of(f, values) for f, values in raw.items()}
        self.model.eval()
        logits = self.model(ids).double()
        if self.objective == "bce":
            return torch.sigmoid(logits).numpy()
        return (logits + (self.rating_offset or 0.0)).numpy()


# ---------------------------------------------------------------------------------- loading
def stream_model_from_checkpoint(state: Mapping[str, Any]) -> LoadedStreamModel:
    """Rebuild the model of a loaded stream model file (the dict :func:`save_stream_model`
    writes)."""
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


def load_stream_model(path: str | Path) -> LoadedStreamModel:
    """Rebuild a model written by :func:`save_stream_model`.

    Raises:
        DataError: a missing file, or a file that is no stream model (the path is named).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError("stream model file not found", path=path)
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or state.get("format") != STREAM_MODEL_FORMAT:
        raise DataError(f"not a leanrec stream model (format {STREAM_MODEL_FORMAT})", path=path)
    return stream_model_from_checkpoint(state)
