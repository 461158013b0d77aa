"""CTR model registry: names to classes, building from options and from checkpoints."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from leanrec.data.behavior import FeatureMap
from leanrec.embeddings.base import TableFactory
from leanrec.embeddings.specs import SpecTableFactory
from leanrec.model_files import read_torch_file
from leanrec.models.ctr.ameir.model import AMEIRModel
from leanrec.models.ctr.base import CTR_CHECKPOINT_FORMAT, CTRConfig, CTRModel
from leanrec.models.ctr.deepfm import DeepFM
from leanrec.models.ctr.din import DIN
from leanrec.models.ctr.dnn import DNN
from leanrec.models.ctr.wide_deep import WideDeep
from leanrec.models.ctr.xdeepfm import XDeepFM
from leanrec.models.naming import ModelRegistry

CTR_MODELS: dict[str, type[CTRModel]] = {
    "dnn": DNN,
    "youtube_dnn": DNN,
    "wide_deep": WideDeep,
    "widedeep": WideDeep,
    "wdl": WideDeep,
    "deepfm": DeepFM,
    "xdeepfm": XDeepFM,
    "din": DIN,
    "ameir": AMEIRModel,
}
"""Model names (and aliases) to classes (``ameir``: a searched architecture, which its config
carries)."""


CTR_REGISTRY = ModelRegistry(
    CTR_MODELS, "CTR model", lambda name: name.lower().replace("&", "_").replace("-", "_")
)
"""Lookup of :data:`CTR_MODELS` (``Wide&Deep``, ``wide-deep`` and ``wide_deep`` are one name)."""


def ctr_model_class(name: str) -> type[CTRModel]:
    return CTR_REGISTRY.model_class(name)


def make_ctr_config(name: str, **options: Any) -> CTRConfig:
    """The config dataclass of model ``name`` with ``options`` overriding its defaults.

    Unknown option names raise ``ValueError`` listing the valid ones.
    """
    config: CTRConfig = CTR_REGISTRY.make_config(name, options)
    return config


def build_ctr_model(
    name: str,
    feature_map: FeatureMap,
    *,
    table_factory: TableFactory | None = None,
    seed: int | None = None,
    **config: Any,
) -> CTRModel:
    """Build CTR model ``name`` for ``feature_map``.

    Args:
        name: one of :data:`CTR_MODELS` (``dnn``, ``wide_deep``, ``deepfm``, ``xdeepfm``,
            ``din`` and aliases).
        feature_map: field layout of the data.
        table_factory: builds the ``d``-wide ID tables (full tables by default).
        seed: seeds torch's global generator before the weights are initialised.
        **config: fields of the model's config dataclass (``embedding_dim=8``...).

    Example:
        >>> model = build_ctr_model("din", samples.feature_map, embedding_dim=8, seed=0)
        >>> model(samples.batch(np.arange(4))).shape
        torch.Size([4])
    """
    cls = ctr_model_class(name)
    cfg = make_ctr_config(name, **config)
    if seed is not None:
        torch.manual_seed(seed)
    return cls(feature_map, cfg, table_factory=table_factory)


def ctr_model_from_checkpoint(state: dict[str, Any]) -> CTRModel:
    """Rebuild a model from :meth:`CTRModel.checkpoint` output."""
    if state.get("format") != CTR_CHECKPOINT_FORMAT:
        raise ValueError(f"not a leanrec CTR model checkpoint (format {state.get('format')!r})")
    cls = ctr_model_class(state["model"])
    config = cls.config_class(**state["config"])
    feature_map = FeatureMap.from_json(state["feature_map"])
    model = cls(feature_map, config, table_factory=SpecTableFactory(state["tables"]))
    model.load_state_dict(state["state_dict"])
    return model


def load_ctr_model(path: str | Path) -> CTRModel:
    """Load a model written by :meth:`CTRModel.save`."""
    state = read_torch_file(path)
    return ctr_model_from_checkpoint(state)


__all__ = [
    "CTR_MODELS",
    "build_ctr_model",
    "ctr_model_class",
    "ctr_model_from_checkpoint",
    "load_ctr_model",
    "make_ctr_config",
]
