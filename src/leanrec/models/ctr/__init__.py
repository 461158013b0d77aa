"""Hand-designed CTR models over behaviour data: DNN, Wide&Deep, DeepFM, xDeepFM and DIN.

Every model reads a :class:`~leanrec.data.behavior.BehaviorBatch`, embeds it with a shared
:class:`BehaviorEmbedder` (one :class:`~leanrec.embeddings.EmbeddingTable` per vocabulary) and
returns one logit per sample; :func:`build_ctr_model` builds one by name. They are the
hand-designed baselines of the AMEIR architecture search and are trained by
:class:`leanrec.train.pointwise.CTRTrainer`.
"""

from leanrec.models.ctr.base import CTRConfig, CTRModel
from leanrec.models.ctr.deepfm import DeepFM
from leanrec.models.ctr.din import DIN, ActivationUnit, DINConfig
from leanrec.models.ctr.dnn import DNN, DeepTower
from leanrec.models.ctr.inputs import BehaviorEmbedder, EmbeddedBatch, history_mask
from leanrec.models.ctr.layers import CIN, MLP, Dice, activation_layer, fm_second_order
from leanrec.models.ctr.registry import (
    CTR_MODELS,
    build_ctr_model,
    ctr_model_class,
    ctr_model_from_checkpoint,
    load_ctr_model,
    make_ctr_config,
)
from leanrec.models.ctr.wide_deep import WideDeep
from leanrec.models.ctr.xdeepfm import XDeepFM, XDeepFMConfig

__all__ = [
    "CIN",
    "CTR_MODELS",
    "DIN",
    "DNN",
    "MLP",
    "ActivationUnit",
    "BehaviorEmbedder",
    "CTRConfig",
    "CTRModel",
    "DINConfig",
    "DeepFM",
    "DeepTower",
    "Dice",
    "EmbeddedBatch",
    "WideDeep",
    "XDeepFM",
    "XDeepFMConfig",
    "activation_layer",
    "build_ctr_model",
    "ctr_model_class",
    "ctr_model_from_checkpoint",
    "fm_second_order",
    "history_mask",
    "load_ctr_model",
    "make_ctr_config",
]
