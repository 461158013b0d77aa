"""Saving and loading a learned sketching policy ``Φ`` on its own (no base model attached)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from leanrec.data.errors import DataError, require_file
from leanrec.search.sketch.config import SketchConfig
from leanrec.search.sketch.policy import SketchScorer
from leanrec.train.checkpoint import load_checkpoint, save_atomic

POLICY_KIND = "leanrec.sketch_policy"


def save_policy(
    scorer: SketchScorer,
    config: SketchConfig,
    method: str,
    path: str | Path,
    item_ids: np.ndarray | None = None,
) -> Path:
    """Write the scorer with what it needs to run: sizes, ``K``, ``τ``, and the raw item IDs
    its embedding rows stand for (when given)."""
    state: dict[str, Any] = {
        "kind": POLICY_KIND,
        "method": method,
        "n_items": scorer.item_embedding.num_embeddings,
        "dim": scorer.item_embedding.embedding_dim,
        "hidden": scorer.head[0].out_features,  # type: ignore[index]
        "explicit": scorer.explicit,
        "state_features": scorer.state_features,
        "sketch_size": config.sketch_size,
        "update_period": config.update_period,
        "scorer": scorer.state_dict(),
        "item_ids": None if item_ids is None else np.asarray(item_ids).tolist(),
    }
    return save_atomic(state, path)


def load_policy(path: str | Path) -> tuple[SketchScorer, dict[str, Any]]:
    """The scorer saved by :func:`save_policy` and its metadata.

    Raises:
        DataError: the file is missing or is not a saved sketching policy.
    """
    state = load_checkpoint(require_file(path, "sketching policy"))
    if state.get("kind") != POLICY_KIND:
        raise DataError(f"{path}: not a leanrec sketching policy (kind {state.get('kind')!r})")
    scorer = SketchScorer(
        state["n_items"],
        state["dim"],
        state["hidden"],
        state["explicit"],
        int(state.get("state_features", 0)),
        # any β > 0 creates the learned skip; its saved value replaces it
        recency_prior=1.0 if "recency_skip" in state["scorer"] else 0.0,
    )
    scorer.load_state_dict(state["scorer"])
    scorer.eval()
    meta = {k: v for k, v in state.items() if k != "scorer"}
    return scorer, meta


__all__ = ["load_policy", "save_policy"]
