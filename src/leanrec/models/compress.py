"""Per-entity embedding sizes on any model, and export to packed (ragged) storage.

A per-entity policy (CIESS, its baselines) decides one size ``d_u`` per user and ``d_v`` per item.
:func:`set_entity_sizes` applies them to every table of the matching role (NeuMF's GMF *and* MLP
tables), :func:`entity_sparsity` counts them over all tables, and :func:`compress` swaps every
masked table for its packed :class:`~leanrec.embeddings.RaggedEmbedding`, so the bytes saved are
bytes RAM and disk never hold. :func:`save_compressed` writes safetensors.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from leanrec.data.errors import DataError
from leanrec.embeddings import EmbeddingTable, MaskedEmbedding, RaggedEmbedding
from leanrec.models.base import CHECKPOINT_FORMAT, Recommender
from leanrec.models.registry import model_from_checkpoint

COMPRESSED_FORMAT = "leanrec.compressed/1"


def use_masked_tables(model: Recommender) -> Recommender:
    """Replace every full table of ``model`` by a :class:`MaskedEmbedding` with the same weights
    (all sizes ``d_max``). Scores are unchanged until sizes are set. Returns ``model``."""
    for name, table in model.embedding_tables().items():
        if isinstance(table, MaskedEmbedding):
            continue
        weight = table.all().detach()
        model.replace_table(name, MaskedEmbedding.from_tensor(weight))
    return model


def masked_tables(model: Recommender) -> dict[str, MaskedEmbedding]:
    tables = model.embedding_tables()
    bad = [name for name, t in tables.items() if not isinstance(t, MaskedEmbedding)]
    if bad:
        raise TypeError(f"tables {bad} are not masked; call use_masked_tables(model) first")
    return {name: t for name, t in tables.items() if isinstance(t, MaskedEmbedding)}


def set_entity_sizes(model: Recommender, user_sizes: Any, item_sizes: Any) -> None:
    """Give user ``u`` size ``user_sizes[u]`` in every user table, and likewise for items.

    Args:
        user_sizes: ``(|U|,)`` ints in ``[0, d_max]``.
        item_sizes: ``(|I|,)`` ints in ``[0, d_max]``.
    """
    roles = model.table_roles()
    for name, table in masked_tables(model).items():
        table.set_sizes(user_sizes if roles[name] == "user" else item_sizes)
    model.invalidate_cache()


def entity_sizes(model: Recommender) -> dict[str, np.ndarray]:
    """Sizes per table name, int64 arrays."""
    out = {}
    for name, table in model.embedding_tables().items():
        if isinstance(table, (MaskedEmbedding, RaggedEmbedding)):
            out[name] = table.sizes.cpu().numpy().astype(np.int64)
        else:
            out[name] = np.full(table.num_embeddings, table.embedding_dim, dtype=np.int64)
    return out


def table_sparsity(tables: dict[str, EmbeddingTable]) -> float:
    """``1 - sum(kept values) / sum(N_t * d_max_t)`` over all tables (CIESS Eq. 5)."""
    kept = sum(t.num_parameters() for t in tables.values())
    full = sum(t.num_embeddings * t.embedding_dim for t in tables.values())
    return 1.0 - kept / full


def entity_sparsity(model: Recommender) -> float:
    """Sparsity of all the model's ID tables together (every table counts)."""
    return table_sparsity(model.embedding_tables())


def compress(model: Recommender) -> Recommender:
    """A copy of ``model`` whose masked tables are packed into :class:`RaggedEmbedding`.

    Scores (and therefore top-k lists) are identical; the table bytes become ``sum(d_n)`` floats
    plus offsets.
    """
    packed = copy.deepcopy(model)
    for name, table in packed.embedding_tables().items():
        if isinstance(table, MaskedEmbedding):
            packed.replace_table(name, RaggedEmbedding.from_masked(table))
    packed.eval()
    return packed


def _ids_tensor(raw_ids: np.ndarray) -> torch.Tensor | None:
    if raw_ids.dtype.kind in "iu":
        return torch.from_numpy(raw_ids.astype(np.int64))
    return None


SEEN_BUFFERS = ("seen_indptr", "seen_indices")
"""The training interactions a model excludes when serving (CSR of each user's seen items):
int64 after training, stored as int32 by :func:`save_compressed` when they fit, and kept int32
by :func:`load_compressed` (half the resident bytes of a served model's largest buffers)."""


def save_compressed(
    model: Recommender,
    path: str | Path,
    user_ids: np.ndarray | None = None,
    item_ids: np.ndarray | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write ``compress(model)`` as a safetensors file.

    Tensors: the model's ``state_dict`` (packed tables as ``*.values`` / ``*.offsets``) and,
    when numeric, the raw ``user_ids`` / ``item_ids``. The header metadata holds the model
    kind, config and table specs (and string IDs, when they are not numeric).
    """
    from safetensors.torch import save_file

    packed = compress(model)
    state = packed.checkpoint()
    tensors = {f"state.{k}": v.contiguous() for k, v in state.pop("state_dict").items()}
    for name in SEEN_BUFFERS:  # item indices and offsets: half the bytes as int32
        seen = tensors.get(f"state.{name}")
        if seen is not None and (seen.numel() == 0 or int(seen.max()) < 2**31):
            tensors[f"state.{name}"] = seen.to(torch.int32)
    header: dict[str, Any] = dict(state)
    header["compressed_format"] = COMPRESSED_FORMAT
    header["extra"] = extra or {}
    for key, ids in (("user_ids", user_ids), ("item_ids", item_ids)):
        if ids is None:
            continue
        ids = np.asarray(ids)
        as_tensor = _ids_tensor(ids)
        if as_tensor is not None:
            tensors[key] = as_tensor
        else:
            header[key] = [str(x) for x in ids.tolist()]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata={"leanrec": json.dumps(header, default=str)})
    # safetensors creates the file 0600 whatever the umask; give it the usual permissions
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(path, 0o666 & ~mask)
    return path


def load_compressed(path: str | Path) -> tuple[Recommender, np.ndarray | None, np.ndarray | None]:
    """Load a file written by :func:`save_compressed`: ``(model, user_ids, item_ids)``."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise DataError("compressed model not found", path=path)
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
    except Exception as error:  # safetensors raises its own error types
        raise DataError(f"not a safetensors file ({error})", path=path) from error
    if "leanrec" not in metadata:
        raise DataError("safetensors file has no leanrec header", path=path)
    header = json.loads(metadata["leanrec"])
    if header.get("compressed_format") != COMPRESSED_FORMAT:
        raise DataError(f"unknown format {header.get('compressed_format')!r}", path=path)
    state = {k: v for k, v in header.items() if k not in ("user_ids", "item_ids", "extra")}
    state["format"] = CHECKPOINT_FORMAT
    state["state_dict"] = {k[6:]: v for k, v in tensors.items() if k.startswith("state.")}
    for name, tensor in state["state_dict"].items():  # safetensors keeps no checksum
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise DataError(
                f"damaged compressed model: {name} holds NaN or infinite values (a changed "
                "file or a diverged training)",
                path=path,
            )
    model = model_from_checkpoint(state)
    model.eval()
    ids: list[np.ndarray | None] = []
    for key in ("user_ids", "item_ids"):
        if key in tensors:
            ids.append(tensors[key].numpy())
        elif key in header:
            ids.append(np.asarray(header[key], dtype=object))
        else:
            ids.append(None)
    return model, ids[0], ids[1]
