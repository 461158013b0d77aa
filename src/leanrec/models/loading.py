"""One loader for every saved leanrec model, whatever its family.

:func:`load_model` reads

* a ranking model (MF, NeuMF, NGCF, LightGCN) written by :meth:`Recommender.save` or, with
  its raw user and item IDs, by :func:`save_ranking_model` (``leanrec train``), or the packed
  ``.safetensors`` of ``leanrec compress``;
* a CTR model (:mod:`leanrec.models.ctr`, AMEIR's searched model included) written by
  :meth:`~leanrec.models.ctr.base.CTRModel.save`;
* a next-item model: a built-in encoder written by
  :func:`~leanrec.models.seq.save_next_item_model`, or a searched one written by
  :func:`~leanrec.models.seq.searched.save_searched_model` (``leanrec train --architecture``);
* a stream model (:class:`~leanrec.models.stream.StreamModel`: a pointwise model on stream
  tables, AutoAssign+'s assignment included) written by
  :func:`~leanrec.models.stream_io.save_stream_model`, with its raw IDs per field.

It tells them apart by the file's ``format`` key (the searched next-item file by its
``architecture`` key), never by the file name.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from leanrec.data.errors import DataError
from leanrec.data.interactions import IdVocabulary
from leanrec.models.base import CHECKPOINT_FORMAT, Recommender
from leanrec.models.compress import load_compressed
from leanrec.models.ctr.base import CTR_CHECKPOINT_FORMAT
from leanrec.models.ctr.registry import ctr_model_from_checkpoint
from leanrec.models.registry import model_from_checkpoint
from leanrec.models.seq import NEXT_ITEM_CHECKPOINT_FORMAT, next_item_model_from_checkpoint
from leanrec.models.seq.searched import searched_model_from_checkpoint
from leanrec.models.stream_io import (
    STREAM_MODEL_FORMATS,
    LoadedStreamModel,
    stream_model_from_checkpoint,
)

__all__ = ["LoadedModel", "ModelFamily", "load_model", "save_ranking_model"]

ModelFamily = Literal["ranking", "ctr", "sequential", "stream"]


@dataclass
class LoadedModel:
    """A model read by :func:`load_model`.

    Attributes:
        model: a :class:`~leanrec.models.base.Recommender`, a
            :class:`~leanrec.models.ctr.base.CTRModel`, a
            :class:`~leanrec.models.seq.NextItemModel` or a
            :class:`~leanrec.models.stream.StreamModel`.
        family: ``"ranking"``, ``"ctr"``, ``"sequential"`` or ``"stream"``.
        user_vocab: raw user IDs of the model's user indices, when the file has them.
        item_vocab: raw item IDs of the model's item indices, when the file has them.
        stream: a stream model's server (``None`` for the other families): its vocabularies
            (raw ID -> index per field, which grow as unseen IDs are served, hence not
            ``user_vocab``/``item_vocab``), :meth:`~LoadedStreamModel.is_known` and
            :meth:`~LoadedStreamModel.predict` on raw IDs; its ``model`` is ``model``.
    """

    model: nn.Module
    family: ModelFamily
    user_vocab: IdVocabulary | None = None
    item_vocab: IdVocabulary | None = None
    stream: LoadedStreamModel | None = None


def save_ranking_model(
    model: Recommender, path: str | Path, user_vocab: IdVocabulary, item_vocab: IdVocabulary
) -> Path:
    """Write ``model``'s checkpoint with the raw IDs of its user and item indices (``user_ids``,
    ``item_ids``; :func:`load_model` gives them back as vocabularies, so a reader can map raw
    IDs and check the model was trained on its own split). ``torch.load(weights_only=True)``
    reads it."""
    state = model.checkpoint()
    state["user_ids"] = user_vocab.raw_ids.tolist()
    state["item_ids"] = item_vocab.raw_ids.tolist()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return path


def _vocabulary(ids: Any, kind: str) -> IdVocabulary | None:
    return None if ids is None else IdVocabulary(np.asarray(ids), kind)


def load_model(path: str | Path) -> LoadedModel:
    """Read any saved leanrec model file (see the module docstring).

    Raises:
        DataError: a missing file, or a file that is no leanrec model (the path is named).

    Example:
        >>> loaded = load_model("runs/ml-1m-mf/model.pt")
        >>> items, scores = loaded.model.recommend(loaded.user_vocab.to_index([1]), 10)
    """
    path = Path(path)
    if not path.is_file():
        raise DataError("model file not found", path=path)
    if path.suffix == ".safetensors":
        model, user_ids, item_ids = load_compressed(path)
        return LoadedModel(
            model, "ranking", _vocabulary(user_ids, "user"), _vocabulary(item_ids, "item")
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises pickle/zip errors of several types
        raise DataError(f"not a leanrec model file ({error})", path=path) from error
    if not isinstance(state, dict):
        raise DataError("not a leanrec model file (no checkpoint dict)", path=path)
    return _from_state(state, path)


def _from_state(state: dict[str, Any], path: Path) -> LoadedModel:
    kind = state.get("format")
    if kind == CHECKPOINT_FORMAT:
        return LoadedModel(
            model_from_checkpoint(state),
            "ranking",
            _vocabulary(state.get("user_ids"), "user"),
            _vocabulary(state.get("item_ids"), "item"),
        )
    if kind == CTR_CHECKPOINT_FORMAT:
        return LoadedModel(ctr_model_from_checkpoint(state), "ctr")
    if kind == NEXT_ITEM_CHECKPOINT_FORMAT:
        return LoadedModel(next_item_model_from_checkpoint(state), "sequential")
    if kind in STREAM_MODEL_FORMATS:
        served = stream_model_from_checkpoint(state)
        return LoadedModel(served.model, "stream", stream=served)
    if "architecture" in state and "model" in state:
        return LoadedModel(searched_model_from_checkpoint(state), "sequential")
    raise DataError(f"not a leanrec model file (format {kind!r})", path=path)
