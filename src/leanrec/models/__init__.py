"""Base recommenders: they ask :mod:`leanrec.embeddings` for vectors, never own raw tables.

:func:`load_model` reads a saved model of any family (ranking, CTR, next-item, stream).
"""

from leanrec.models.base import DotProductRecommender, PairwiseOutput, Recommender
from leanrec.models.lightgcn import LightGCN, LightGCNConfig
from leanrec.models.loading import LoadedModel, load_model
from leanrec.models.mf import MF, MFConfig
from leanrec.models.ncf import NeuMF, NeuMFConfig
from leanrec.models.ngcf import NGCF, NGCFConfig
from leanrec.models.registry import MODELS, build_model, make_model_config, model_class

__all__ = [
    "MF",
    "MODELS",
    "NGCF",
    "DotProductRecommender",
    "LightGCN",
    "LightGCNConfig",
    "LoadedModel",
    "MFConfig",
    "NGCFConfig",
    "NeuMF",
    "NeuMFConfig",
    "PairwiseOutput",
    "Recommender",
    "build_model",
    "load_model",
    "make_model_config",
    "model_class",
]
