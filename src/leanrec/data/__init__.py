"""leanrec.data.

The behaviour-sequence (CTR) data API is re-exported here lazily, so ``import leanrec.data.x``
does not import torch:

* :class:`~leanrec.data.behavior.FieldSpec`, :class:`~leanrec.data.behavior.FeatureMap`,
  :class:`~leanrec.data.behavior.BehaviorSamples`, :class:`~leanrec.data.behavior.BehaviorBatch`,
  :class:`~leanrec.data.behavior.BehaviorSplit`;
* :func:`~leanrec.data.loaders.movielens_ctr.build_movielens_ctr` and
  :func:`~leanrec.data.registry.load_behavior_dataset` (``"ml-1m-ctr"``).
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY_EXPORTS: dict[str, str] = {
    "BehaviorBatch": "leanrec.data.behavior",
    "DataFile": "leanrec.data.own",
    "BehaviorSamples": "leanrec.data.behavior",
    "BehaviorSplit": "leanrec.data.behavior",
    "FeatureMap": "leanrec.data.behavior",
    "FieldSpec": "leanrec.data.behavior",
    "build_movielens_ctr": "leanrec.data.loaders.movielens_ctr",
    "temporal_split_counts": "leanrec.data.behavior",
    "load_behavior_dataset": "leanrec.data.registry",
}

__all__ = sorted(_LAZY_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _LAZY_EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'leanrec.data' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
