"""Saving and loading a :class:`~leanrec.models.stream.StreamModel` with its raw IDs, for serving.

The file (format ``"leanrec.stream_model/2"``) holds the base model's name and build options,
the spec of each field's stream table (:meth:`~leanrec.embeddings.base.EmbeddingTable.spec`:
kind and hyper-parameters, by field; a hierarchy's positions, counts and rows are in the state
dict, each field table once) and the raw IDs of each field in index order. Format ``/1`` held
one table per model slot (a field's first-order weights apart); such a file still loads: the
slot tables of a field are joined column-wise into its field table, which needs them to share
their per-ID state (a ``DataError`` names the field when they do not).

A model whose deep tower was made expandable (:mod:`leanrec.models.expandable`) carries the
tower's spec under ``"expandable"`` (a key the files of other models do not have): loading
re-shapes the rebuilt model's tower to the saved widths before the state dict is loaded.

Loading rebuilds every table from :mod:`leanrec.embeddings` alone: whatever decided the
tables' assignment during training (an agent, a threshold) is not needed to serve, because
positions and rows are state of the tables.

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

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from leanrec.data.errors import DataError
from leanrec.embeddings.base import EmbeddingTable
from leanrec.embeddings.columns import ColumnView
from leanrec.embeddings.specs import table_from_spec
from leanrec.model_files import read_torch_file
from leanrec.models.expandable import expandable_tower, make_expandable
from leanrec.models.stream import StreamModel, build_stream_model

__all__ = [
    "STREAM_MODEL_FORMAT",
    "STREAM_MODEL_FORMATS",
    "LoadedStreamModel",
    "load_stream_model",
    "save_stream_model",
    "stream_model_from_checkpoint",
]

STREAM_MODEL_FORMAT = "leanrec.stream_model/2"
OLD_STREAM_MODEL_FORMATS = ("leanrec.stream_model/1",)
"""Formats of earlier versions: ``/1`` held one stream table per model slot."""
STREAM_MODEL_FORMATS = (STREAM_MODEL_FORMAT, *OLD_STREAM_MODEL_FORMATS)
"""Every format :func:`load_stream_model` reads."""


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

    tower = expandable_tower(model)
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
    if tower is not None:
        state["expandable"] = tower.spec()
    return save_atomic(state, Path(path))


_INTEGER_TEXT = re.compile(r"[+-]?[0-9]+")
"""Text that is an integer ID: ASCII digits, an optional sign, spaces around."""


def _index_of(vocabulary: dict[Any, int], value: Any, cold: int, where: str) -> int:
    """The index of raw ID ``value`` in ``vocabulary``, else ``cold``. A value not found as
    given is looked up again as the other kind (``"42"`` as 42, ``42`` as ``"42"``, ``42.0``
    as 42), so an ID matches whatever type a caller holds it in.

    Raises:
        ValueError: None, NaN, infinity, a bool or a fractional number (no ID); ``where``
            names the place.
    """
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, bool):
        raise ValueError(f"{where}: {value!r} is not an ID")
    if isinstance(value, float) and not value.is_integer():  # NaN and infinity included
        raise ValueError(f"{where}: {value!r} is not an ID")
    found = vocabulary.get(value)
    if found is not None:
        return found
    if isinstance(value, str):
        text = value.strip()
        others: list[Any] = [text]
        if _INTEGER_TEXT.fullmatch(text):
            others += [int(text), float(int(text))]
    else:  # a whole number
        others = [int(value), float(value), str(int(value))]
    return next((vocabulary[o] for o in others if o in vocabulary), cold)


def _plain(value: Any) -> Any:
    """A numpy scalar as its Python value (``weights_only`` loading refuses numpy objects)."""
    return value.item() if isinstance(value, np.generic) else value


# ---------------------------------------------------------------------------------- serving
@dataclass
class LoadedStreamModel:
    """A stream model read back: ``model`` scores index tensors, :meth:`predict` raw IDs.

    Scoring never grows the vocabularies: an ID the model was not saved with is scored at the
    cold index (the vocabulary's size), which reads the shared vector a new ID reads, so a
    server met by ever new IDs holds what it loaded.

    Attributes:
        model: the stream model; its tables accept every index of :attr:`raw_ids` and the
            cold index.
        objective: ``"bce"`` or ``"mse"`` (see :func:`save_stream_model`).
        rating_offset: added to ``mse`` logits to give ratings.
        raw_ids: raw IDs per field in index order, as saved.
        vocabularies: raw ID -> index per field (the inverse of :attr:`raw_ids`).
        known_sizes: vocabulary size per field: indices below it are the IDs the model was
            saved with; the size itself is the cold index.
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
        """Indices ``(B,)`` int64 of raw IDs; an ID the model was not saved with gets the cold
        index (it reads the shared vector a new ID reads, level 1 in a hierarchy) and is not
        added to the vocabulary. An ID matches whatever type it is held in (``"42"``, 42 and
        42.0 are one ID); text that names no ID is unseen.

        Raises:
            ValueError: a value that is no ID (None, NaN, ``1.5``, a bool), its field and
                position named.
        """
        vocabulary, cold = self.vocabularies[field_name], self.known_sizes[field_name]
        out = [
            _index_of(vocabulary, value, cold, f"{field_name}[{n}]") for n, value in enumerate(raw)
        ]
        if cold in out:  # the tables accept the cold index
            self.model.extend_ids({f: size + 1 for f, size in self.known_sizes.items()})
        return torch.tensor(out, dtype=torch.int64)

    def is_known(self, field_name: str, raw: Sequence[Any]) -> np.ndarray:
        """Whether each raw ID was in the model's vocabulary when it was saved, bool ``(B,)``
        (read as :meth:`index_of` reads it). ``False`` flags a cold ID: it reads the table's
        shared vector (level 1 of a hierarchy, the fallback row of the other tables)."""
        vocabulary, cold = self.vocabularies[field_name], self.known_sizes[field_name]
        where = field_name
        indices = [_index_of(vocabulary, v, cold, f"{where}[{n}]") for n, v in enumerate(raw)]
        return np.array([index < cold for index in indices], dtype=bool)

    @torch.no_grad()
    def predict(self, raw: Mapping[str, Sequence[Any]]) -> np.ndarray:
        """P(label = 1) (``bce``) or the rating (``mse``) per event, float64 ``(B,)``, from raw
        IDs per field (each a sequence of length ``B``, one per field of the model).

        Raises:
            ValueError: a field missing or unknown, fields of unequal lengths, or a value that
                is no ID (:meth:`index_of`).
        """
        fields = set(self.raw_ids)
        if set(raw) != fields:
            raise ValueError(
                f"predict takes one sequence of IDs per field {sorted(fields)}, got {sorted(raw)}"
            )
        lengths = {f: len(values) for f, values in raw.items()}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"every field needs one ID per event, got lengths {lengths}")
        ids = {f: self.index_of(f, values) for f, values in raw.items()}
        self.model.eval()
        logits = self.model(ids).double()
        if self.objective == "bce":
            return torch.sigmoid(logits).numpy()
        return (logits + (self.rating_offset or 0.0)).numpy()


# ---------------------------------------------------------------------------------- loading
def stream_model_from_checkpoint(state: Mapping[str, Any]) -> LoadedStreamModel:
    """Rebuild the model of a loaded stream model file (the dict :func:`save_stream_model`
    writes, or a file of format ``/1``: see :func:`_joined_slot_tables`).

    Raises:
        DataError: a ``/1`` file whose slot tables of one field do not share their per-ID
            state (they cannot be joined into one field table).
    """
    first_format = state.get("format") in OLD_STREAM_MODEL_FORMATS
    specs: dict[str, dict[str, Any]] = state["tables"]

    def rebuild(name: str, num_embeddings: int, embedding_dim: int) -> EmbeddingTable:
        # a /1 file names its tables by slot; the field's first slot is named after the field
        # (CTR models) or holds the field in its name (NeuMF's gmf_user)
        spec = specs.get(name) or next(v for k, v in specs.items() if name in k)
        return table_from_spec(spec, num_embeddings, embedding_dim)

    model = build_stream_model(
        state["model"],
        tuple(state["fields"]),
        embedding_dim=state["embedding_dim"],
        table_factory=rebuild,
        **state["options"],
    )
    if state.get("expandable") is not None:
        make_expandable(model, state["expandable"])
    state_dict = state["state_dict"]
    if first_format:
        state_dict = _joined_slot_tables(model, specs, state_dict)
    model.load_state_dict(state_dict)
    return LoadedStreamModel(
        model,
        state["objective"],
        state["rating_offset"],
        {f: list(v) for f, v in state["raw_ids"].items()},
    )


def _joined_slot_tables(
    model: StreamModel, specs: Mapping[str, dict[str, Any]], state_dict: Mapping[str, Any]
) -> dict[str, Any]:
    """The state dict of a format ``/1`` file (one stream table per model slot, stored where
    the model's column views now sit) laid out for one table per field.

    Each slot's table is rebuilt from its spec and state; a field's slot tables are joined
    column-wise: parameters (rows, shared vectors, fallback) side by side in the slots' column
    order, everything else (ID maps, positions, counts, the ID space) taken once, which needs
    it to be the same in every slot's table (it is when one decision moved them all: the
    all-unique tables, the hierarchy's mirrored first-order tables, one hash per field).
    """
    out = dict(state_dict)
    prefixes = {
        (view.table, view.start): f"model.{name}."
        for name, view in model.model.named_modules()
        if isinstance(view, ColumnView)
    }
    tables = model.id_tables()
    joined: dict[str, list[tuple[str, EmbeddingTable]]] = {}
    for slot, columns in model.columns.items():
        prefix = prefixes[(tables[columns.field], columns.start)]
        own = {k[len(prefix) :]: out.pop(k) for k in list(out) if k.startswith(prefix)}
        table = table_from_spec(specs[slot], 1, columns.stop - columns.start)
        table.load_state_dict(own)
        joined.setdefault(columns.field, []).append((slot, table))
    for field_name, slot_tables in joined.items():
        first_slot, first = slot_tables[0]
        parameters = {name for name, _ in first.named_parameters()}
        for key, value in first.state_dict().items():
            if key in parameters:
                value = torch.cat([t.state_dict()[key] for _, t in slot_tables], dim=1)
            else:
                for slot, other in slot_tables[1:]:
                    if not _same(other.state_dict()[key], value):
                        raise DataError(
                            f"stream model of format {OLD_STREAM_MODEL_FORMATS[0]!r}: tables "
                            f"{first_slot!r} and {slot!r} of field {field_name!r} differ in "
                            f"{key!r}, so they cannot be joined into one table per field"
                        )
            out[f"field_tables.{field_name}.{key}"] = value
    return out


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        return a.shape == b.shape and bool(torch.equal(a.to(b.dtype), b))
    return bool(a == b)


def load_stream_model(path: str | Path) -> LoadedStreamModel:
    """Rebuild a model written by :func:`save_stream_model`.

    Raises:
        DataError: a missing file, or a file that is no stream model (the path is named).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError("stream model file not found", path=path)
    state = read_torch_file(path, "stream model file")
    if not isinstance(state, dict) or state.get("format") not in STREAM_MODEL_FORMATS:
        raise DataError(f"not a leanrec stream model (format {STREAM_MODEL_FORMAT})", path=path)
    return stream_model_from_checkpoint(state)
