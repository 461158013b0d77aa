"""Every CTR model, AMEIR's searched one included, passes
:class:`tests.models.contract.CTRModelContract`."""

from __future__ import annotations

import torch

from leanrec.models.ctr import CTRModel, build_ctr_model
from leanrec.models.ctr.ameir import AMEIRModel, Architecture, BlockChoice
from tests.models.contract import CTRModelContract
from tests.models.ctr.synthetic import feature_map

SMALL = {"embedding_dim": 8, "mlp_dims": (16, 8), "init_std": 0.1}


def _small(name: str, **options: object) -> CTRModel:
    return build_ctr_model(name, feature_map(), seed=0, **{**SMALL, **options})


class TestDNN(CTRModelContract):
    def make_model(self) -> CTRModel:
        return _small("dnn")


class TestWideDeep(CTRModelContract):
    def make_model(self) -> CTRModel:
        return _small("wide_deep")


class TestDeepFM(CTRModelContract):
    def make_model(self) -> CTRModel:
        return _small("deepfm")


class TestXDeepFM(CTRModelContract):
    def make_model(self) -> CTRModel:
        return _small("xdeepfm", cin_layers=(8, 6))


class TestDIN(CTRModelContract):
    def make_model(self) -> CTRModel:
        return _small("din", attention_dims=(12, 6))


SEARCHED = Architecture(
    blocks=(
        BlockChoice("layernorm", "conv3", "relu"),
        BlockChoice("none", "target_attention", "gelu"),
        BlockChoice("layernorm", "bigru", "identity"),
    ),
    interactions=(("item_id", "user_id"), ("age", "gender", "user_id")),
    mlp_widths=(0.5, 0.3),
    mlp_activations=("relu", "dice"),
    se_shortcut=True,
    fm_shortcut=True,
)
"""A searched architecture touching every part of the derived model."""


class TestAMEIRModel(CTRModelContract):
    def make_model(self) -> CTRModel:
        torch.manual_seed(0)
        return AMEIRModel.from_architecture(feature_map(), SEARCHED, embedding_dim=8)
