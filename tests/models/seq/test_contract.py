"""Every next-item model, the searched one included, passes
:class:`tests.models.contract.NextItemModelContract`."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from leanrec.models.ctr.ameir import BlockChoice
from leanrec.models.seq import NextItemModel, build_next_item_model, save_next_item_model
from leanrec.models.seq.searched import build_searched_model, save_searched_model
from tests.models.contract import NextItemModelContract


class BuiltInContract(NextItemModelContract):
    def save(self, model: NextItemModel, path: Path, item_ids: Any = None) -> Path:
        return save_next_item_model(model, path, item_ids)


class TestGRU4Rec(BuiltInContract):
    def make_model(self, n_items: int) -> NextItemModel:
        return build_next_item_model("gru4rec", n_items, {"embedding_dim": 8, "hidden_dim": 12})


class TestSASRec(BuiltInContract):
    def make_model(self, n_items: int) -> NextItemModel:
        return build_next_item_model("sasrec", n_items, {"embedding_dim": 8, "max_length": 6})


ARCHITECTURE = {
    "task": "next_item",
    "blocks": [
        asdict(BlockChoice("layernorm", "dilated_conv5", "gelu")),
        asdict(BlockChoice("none", "bigru", "identity")),
        asdict(BlockChoice("layernorm", "self_attention2", "swish")),
    ],
    "embedding_dim": 8,
    "input_dropout": 0.1,
    "positions": True,
    "final_norm": True,
}
"""A searched next-item architecture with every backbone option on."""


class TestSearchedNextItemModel(NextItemModelContract):
    def make_model(self, n_items: int) -> NextItemModel:
        return build_searched_model(n_items, ARCHITECTURE, max_length=6, seed=1)

    def save(self, model: NextItemModel, path: Path, item_ids: Any = None) -> Path:
        return save_searched_model(model, ARCHITECTURE, path, item_ids)
