"""Bytes of a compressed model three ways: stored, in its file, and resident while serving.

A packed table (:class:`~leanrec.embeddings.RaggedEmbedding`) holds ``sum(d_n)`` floats, but
what a served model keeps in memory is more than its tables: the training items it excludes,
a graph model's normalised adjacency, and the final embeddings a
:class:`~leanrec.models.base.DotProductRecommender` caches for scoring. LightGCN's final
embeddings mix every neighbour's vector, so the cache is ``(|U| + |I|, d_max)`` floats wide
whatever the packed sizes: a served packed LightGCN holds the dense size while it scores. A
packed MF scores from its packed values and caches nothing. These functions measure all three,
so no figure claims a saving RAM does not see.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from leanrec.models.base import Recommender
from leanrec.models.compress import compress, load_compressed, save_compressed


def held_bytes(root: Any) -> int:
    """Bytes of every tensor, numpy array and scipy sparse matrix reachable from ``root``
    (a model: its parameters, buffers, caches and graph), each storage counted once."""
    seen_objects: set[int] = set()
    seen_storages: set[int] = set()
    total = 0
    stack = [root]
    while stack:
        value = stack.pop()
        if id(value) in seen_objects or value is None:
            continue
        seen_objects.add(id(value))
        if isinstance(value, torch.Tensor):
            if value.layout == torch.sparse_csr:
                stack += [value.crow_indices(), value.col_indices(), value.values()]
            elif value.is_sparse:
                stack += [value._indices(), value._values()]
            else:
                storage = value.untyped_storage()
                if storage.data_ptr() not in seen_storages:
                    seen_storages.add(storage.data_ptr())
                    total += storage.nbytes()
        elif isinstance(value, np.ndarray):
            base = value if value.base is None else value.base
            if isinstance(base, np.ndarray) and id(base) not in seen_objects:
                seen_objects.add(id(base))
                total += base.nbytes
        elif sp.issparse(value):
            stack += [getattr(value, name, None) for name in ("data", "indices", "indptr")]
        elif isinstance(value, dict):
            stack += list(value.values())
        elif isinstance(value, list | tuple | set):
            stack += list(value)
        elif hasattr(value, "__dict__") and type(value).__module__.startswith(("leanrec", "torch")):
            stack += list(vars(value).values())
    return total


def serving_bytes(model: Recommender) -> dict[str, int]:
    """Resident bytes of ``model`` as served: ``at_rest`` after loading, ``while_scoring`` with
    the final embeddings it caches for scoring (computed here, then dropped). A model that
    scores from its packed tables caches nothing (its bounded scratch and the ``(B, I)``
    output, which every model needs, are not counted)."""
    model.eval()
    model.invalidate_cache()
    at_rest = held_bytes(model)
    final = getattr(model, "cached_final_embeddings", None)
    packed = getattr(model, "scores_from_packed_tables", lambda: False)()
    if final is not None and not packed:
        final()
    while_scoring = held_bytes(model)
    model.invalidate_cache()
    return {"at_rest": at_rest, "while_scoring": while_scoring}


def packed_memory(
    model: Recommender,
    user_ids: np.ndarray | None,
    item_ids: np.ndarray | None,
    path: Path | None = None,
) -> dict[str, int]:
    """Stored, file and resident-at-serving bytes of a row-size model served packed.

    Args:
        model: the retrained model (masked tables with per-row sizes).
        path: where its packed ``.safetensors`` is (written here when it does not exist);
            None: a temporary file.

    Returns:
        ``stored_bytes`` (the packed tables: values + offsets), ``file_bytes``,
        ``serving_at_rest_bytes`` and ``serving_while_scoring_bytes`` (every tensor of the
        model read back from the file, without and with its cached final embeddings).
    """
    with tempfile.TemporaryDirectory() as scratch:
        target = path if path is not None else Path(scratch) / "model.safetensors"
        if not target.exists():
            save_compressed(model, target, user_ids, item_ids)
        served, _, _ = load_compressed(target)
        serving = serving_bytes(served)
        return {
            "stored_bytes": compress(model).embedding_bytes(),
            "file_bytes": target.stat().st_size,
            "serving_at_rest_bytes": serving["at_rest"],
            "serving_while_scoring_bytes": serving["while_scoring"],
        }


def dense_memory(model: Recommender) -> dict[str, int]:
    """Stored, file and resident-at-serving bytes of a model served as it is (an element
    mask held in dense tables: MagPrune, PEP)."""
    with tempfile.TemporaryDirectory() as scratch:
        target = model.save(Path(scratch) / "model.pt")
        file_bytes = target.stat().st_size
    serving = serving_bytes(model)
    return {
        "stored_bytes": model.embedding_bytes(),
        "file_bytes": file_bytes,
        "serving_at_rest_bytes": serving["at_rest"],
        "serving_while_scoring_bytes": serving["while_scoring"],
    }


__all__ = ["dense_memory", "held_bytes", "packed_memory", "serving_bytes"]
