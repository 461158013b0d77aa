"""Model registry: names to classes, building from configs and from checkpoints."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from leanrec.data.interactions import Interactions
from leanrec.embeddings.base import TableFactory
from leanrec.embeddings.specs import SpecTableFactory
from leanrec.model_files import read_torch_file
from leanrec.models.base import CHECKPOINT_FORMAT, Recommender
from leanrec.models.lightgcn import LightGCN
from leanrec.models.mf import MF
from leanrec.models.naming import ModelRegistry
from leanrec.models.ncf import NeuMF
from leanrec.models.ngcf import NGCF

MODELS: dict[str, type[Recommender]] = {
    "mf": MF,
    "bpr": MF,
    "neumf": NeuMF,
    "ncf": NeuMF,
    "ngcf": NGCF,
    "lightgcn": LightGCN,
}


RANKING_MODELS = ModelRegistry(MODELS, "model")
"""Lookup of :data:`MODELS` (names are matched in lower case)."""


def model_class(name: str) -> type[Recommender]:
    return RANKING_MODELS.model_class(name)


def make_model_config(name: str, options: dict[str, Any] | None = None) -> Any:
    """The config dataclass of model ``name`` with ``options`` overriding its defaults.

    Unknown option names raise ``ValueError`` listing the valid ones.
    """
    return RANKING_MODELS.make_config(name, options)


def build_model(
    name: str,
    train: Interactions,
    config: Any = None,
    table_factory: TableFactory | None = None,
    seed: int | None = None,
) -> Recommender:
    """Build model ``name`` for ``train``'s users and items and attach the training data."""
    cls = model_class(name)
    if config is None or isinstance(config, dict):
        config = make_model_config(name, config)
    if seed is not None:
        torch.manual_seed(seed)
    model = cls(train.n_users, train.n_items, config, table_factory=table_factory)
    model.attach(train)
    return model


def model_from_checkpoint(state: dict[str, Any]) -> Recommender:
    """Rebuild a model from :meth:`Recommender.checkpoint` output."""
    if state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"not a leanrec model checkpoint (format {state.get('format')!r})")
    cls = model_class(state["model"])
    config = cls.config_class(**state["config"])
    factory = SpecTableFactory(state["tables"]) if "tables" in state else None
    model = cls(state["n_users"], state["n_items"], config, table_factory=factory)
    weights = state["state_dict"]
    model.seen_indptr = weights["seen_indptr"].clone()
    model.seen_indices = weights["seen_indices"].clone()
    model.load_state_dict(weights)
    model.after_load()
    return model


def load_ranking_model(path: str | Path) -> Recommender:
    """Load a model written by :meth:`Recommender.save` (weights and seen items)."""
    state = read_torch_file(path)
    return model_from_checkpoint(state)
