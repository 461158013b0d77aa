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
``architecture`` key), never by the file name. A file that is missing, empty, truncated, of
another format, from another leanrec version, or whose contents do not rebuild a model is
refused with one :class:`~leanrec.data.errors.DataError` naming the file and which
(:mod:`leanrec.model_files`).
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
from leanrec.model_files import (
    check_format_version,
    check_safetensors,
    read_torch_file,
    torch_file_path,
)
from leanrec.models.base import CHECKPOINT_FORMAT, Recommender
from leanrec.models.compress import COMPRESSED_FORMAT, load_compressed
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
        item_vocab: raw item IDs of the model's item indices, when the file has them (a
            next-item model's item ID ``i`` is index ``i - 1``: ID 0 is padding).
        stream: a stream model's server (``None`` for the other families): its vocabularies
            (raw ID -> index per field, as saved: an unseen ID is scored at the cold index
            without being added; kept apart from ``user_vocab``/``item_vocab``),
            :meth:`~LoadedStreamModel.is_known` and :meth:`~LoadedStreamModel.predict` on raw
            IDs; its ``model`` is ``model``.
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
    path = torch_file_path(path)
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
    if path.suffix == ".safetensors":
        check_safetensors(path)
        try:
            model, user_ids, item_ids = load_compressed(path)
        except DataError as error:
            format_found = _compressed_format(error)
            if format_found is not None:
                check_format_version(format_found, [COMPRESSED_FORMAT], path, "compressed model")
            raise
        except (KeyError, RuntimeError, ValueError, TypeError) as error:
            raise _damaged(path, error) from None
        return LoadedModel(
            model, "ranking", _vocabulary(user_ids, "user"), _vocabulary(item_ids, "item")
        )
    state = read_torch_file(path)
    try:
        return _from_state(state, path)
    except DataError:
        raise
    except (KeyError, RuntimeError, ValueError, TypeError, IndexError) as error:
        raise _damaged(path, error) from None


READABLE_FORMATS: tuple[str, ...] = (
    CHECKPOINT_FORMAT,
    CTR_CHECKPOINT_FORMAT,
    NEXT_ITEM_CHECKPOINT_FORMAT,
    *STREAM_MODEL_FORMATS,
)
"""The ``format`` keys :func:`load_model` reads (besides the searched next-item file)."""


def _damaged(path: Path, error: Exception) -> DataError:
    """The error of a file that reads but does not rebuild a model (missing keys, shapes)."""
    reason = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return DataError(
        f"damaged or incompatible model file: {type(error).__name__} {reason}".rstrip(),
        path=path,
    )


def _compressed_format(error: DataError) -> str | None:
    """The format named by :func:`load_compressed`'s ``unknown format`` error, if that it is."""
    marker = "unknown format '"
    text = str(error)
    if marker not in text:
        return None
    return text.split(marker, 1)[1].rsplit("'", 1)[0]


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
        items = _vocabulary(state.get("item_ids"), "item")
        return LoadedModel(next_item_model_from_checkpoint(state), "sequential", None, items)
    if kind in STREAM_MODEL_FORMATS:
        served = stream_model_from_checkpoint(state)
        return LoadedModel(served.model, "stream", stream=served)
    if "architecture" in state and "model" in state:
        items = _vocabulary(state.get("item_ids"), "item")
        return LoadedModel(searched_model_from_checkpoint(state), "sequential", None, items)
    if kind is None:
        keys = ", ".join(sorted(map(str, state))[:6])
        raise DataError(
            f"not a leanrec model file: a torch file without a 'format' key (keys: {keys}); a "
            "training checkpoint (train_state.pt) resumes a run, it is no model",
            path=path,
        )
    check_format_version(kind, READABLE_FORMATS, path)
    raise DataError(f"not a leanrec model file (format {kind!r})", path=path)  # pragma: no cover
