"""Stream models saved and loaded for serving: every base model on stream tables passes
:class:`tests.models.contract.StreamModelContract`; a file in the first format loads (its slot
tables joined into one table per field); a loaded model serves without importing
:mod:`leanrec.search`; unseen IDs are flagged cold."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
import torch

from leanrec.data.errors import DataError
from leanrec.embeddings import HierarchicalSharedEmbedding
from leanrec.embeddings.base import EmbeddingTable
from leanrec.embeddings.columns import ColumnView
from leanrec.models import load_model
from leanrec.models.stream import StreamModel, StreamTableFactory
from leanrec.models.stream_io import load_stream_model, save_stream_model
from tests.models.contract import (
    STREAM_DIM,
    STREAM_ITEMS,
    STREAM_USERS,
    StreamModelContract,
    stream_raw_ids,
)


def _hierarchical(name: str, num_embeddings: int, embedding_dim: int) -> EmbeddingTable:
    return HierarchicalSharedEmbedding(num_embeddings, embedding_dim, levels=3, init_std=0.1)


def _assign_positions(model: StreamModel) -> None:
    """Users 0-1 and items 0-2 get unique rows, user 2 and item 3 go to level 2 (the others
    stay where ``observe`` left them: level 1 when seen, position 0 for the last ID)."""
    for name, table in model.id_tables().items():
        assert isinstance(table, HierarchicalSharedEmbedding)
        if model.fields[name] == "user":
            table.set_positions(torch.tensor([0, 1, 2]), torch.tensor([4, 4, 2]))
        else:
            table.set_positions(torch.tensor([0, 1, 2, 3]), torch.tensor([4, 4, 4, 2]))


class TestDeepFMAllUnique(StreamModelContract):
    model_name = "deepfm"
    options: ClassVar[dict[str, Any]] = {"mlp_dims": (8,)}


class TestDNNHierarchical(StreamModelContract):
    model_name = "dnn"
    options: ClassVar[dict[str, Any]] = {"mlp_dims": (8, 4)}

    def make_tables(self) -> StreamTableFactory:
        return _hierarchical

    def assign(self, model: StreamModel) -> None:
        _assign_positions(model)


class TestDeepFMHierarchical(TestDNNHierarchical):
    model_name = "deepfm"
    options: ClassVar[dict[str, Any]] = {"mlp_dims": (8,)}


class TestNeuMFAllUnique(StreamModelContract):
    model_name = "neumf"
    options: ClassVar[dict[str, Any]] = {"mlp_layers": [8, 4]}


# ---------------------------------------------------------------------------- the file format
HIERARCHY_SPEC = {
    "kind": "hierarchical",
    "levels": 3,
    "max_bytes": None,
    "min_capacity": 16,
    "compact_below": 0.5,
    "init_std": 0.1,
}
"""The spec the writers record for :func:`_hierarchical`'s tables."""


def _first_format_state_dict(model: StreamModel) -> dict[str, Any]:
    """``model``'s state as the first writer laid it out: one table per model slot, stored
    where the slot sits in the model (``model.embedder.tables.user.*``,
    ``model.embedder.linear_tables.user.*``), its rows the slot's columns, int64 ID maps."""
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("field_tables.")}
    places = {
        (view.table, view.start): name
        for name, view in model.model.named_modules()
        if isinstance(view, ColumnView)
    }
    tables = model.id_tables()
    for columns in model.columns.values():
        table = tables[columns.field]
        place = places[(table, columns.start)]
        parameters = {name for name, _ in table.named_parameters()}
        for key, value in table.state_dict().items():
            if key in parameters:
                value = value[:, columns.start : columns.stop].clone()
            elif isinstance(value, torch.Tensor):  # each slot's table had its own copy
                value = value.to(torch.int64 if value.dtype == torch.int32 else value.dtype)
                value = value.clone()
            state[f"model.{place}.{key}"] = value
    return state


def _write_first_format(
    model: StreamModel, path: Path, options: dict[str, Any], name: str = "dnn"
) -> Path:
    """The file as the first writer laid it out (format ``leanrec.stream_model/1``: a table
    per model slot, by slot name), written here key by key so that a change of
    :func:`save_stream_model` cannot hide a change of the format: files saved before must
    keep loading."""
    torch.save(
        {
            "format": "leanrec.stream_model/1",
            "model": name,
            "fields": ["user", "item"],
            "embedding_dim": STREAM_DIM,
            "options": options,
            "objective": "mse",
            "rating_offset": 3.5,
            "tables": {slot: dict(HIERARCHY_SPEC) for slot in model.columns},
            "raw_ids": {
                "user": [f"u{i}" for i in range(STREAM_USERS)],
                "item": list(range(100, 100 + STREAM_ITEMS)),
            },
            "state_dict": _first_format_state_dict(model),
        },
        path,
    )
    return path


def _write_second_format(model: StreamModel, path: Path, options: dict[str, Any]) -> Path:
    """The file as this writer lays it out (format ``leanrec.stream_model/2``: one table per
    field, by field name), key by key."""
    torch.save(
        {
            "format": "leanrec.stream_model/2",
            "model": "dnn",
            "fields": ["user", "item"],
            "embedding_dim": STREAM_DIM,
            "options": options,
            "objective": "mse",
            "rating_offset": 3.5,
            # this writer also records whether the table parks demoted rows (a file without
            # the option, as the first writer's, loads with the default: no parking)
            "tables": {field: {**HIERARCHY_SPEC, "park": False} for field in ("user", "item")},
            "raw_ids": {
                "user": [f"u{i}" for i in range(STREAM_USERS)],
                "item": list(range(100, 100 + STREAM_ITEMS)),
            },
            "state_dict": model.state_dict(),
        },
        path,
    )
    return path


class TestTheFirstFormat:
    """A file in the first format (a table per model slot) loads, on the DNN and on DeepFM
    (whose first-order tables join their field's table) with hierarchical tables; and
    :func:`save_stream_model` writes the second format exactly."""

    options: ClassVar[dict[str, Any]] = TestDNNHierarchical.options

    @pytest.fixture
    def model(self) -> StreamModel:
        return TestDNNHierarchical().build_model()

    def test_a_file_in_the_first_format_loads_and_serves_ratings(
        self, model: StreamModel, tmp_path: Path
    ) -> None:
        path = _write_first_format(model, tmp_path / "first.pt", dict(self.options))
        assert "model.embedder.tables.user.unique.row_of_id" in torch.load(path)["state_dict"]
        loaded = load_model(path)
        assert loaded.family == "stream" and loaded.stream is not None
        users, items = torch.tensor([0, 2, 5, 6]), torch.tensor([0, 3, 7, 8])
        expected = model({"user": users, "item": items})
        ratings = loaded.stream.predict(
            {"user": ["u0", "u2", "u5", "u6"], "item": [100, 103, 107, 108]}
        )
        # mse: rating = logit + rating_offset, in float64
        np.testing.assert_array_equal(ratings, expected.detach().double().numpy() + 3.5)
        hierarchy = loaded.model.id_tables()["user"]
        assert isinstance(hierarchy, HierarchicalSharedEmbedding)
        assert hierarchy.positions(torch.tensor([0, 1, 2, 3, 6])).tolist() == [4, 4, 2, 1, 0]
        assert hierarchy.unique.row_of_id.dtype == torch.int32  # read as this version holds it
        assert loaded.model.embedding_bytes() == model.embedding_bytes()

    def test_a_deepfm_file_in_the_first_format_joins_its_first_order_tables(
        self, tmp_path: Path
    ) -> None:
        contract = TestDeepFMHierarchical()
        model = contract.build_model()
        path = _write_first_format(
            model, tmp_path / "first.pt", dict(contract.options), name="deepfm"
        )
        saved = torch.load(path)
        assert set(saved["tables"]) == {"user", "item", "user.first_order", "item.first_order"}
        assert saved["state_dict"]["model.embedder.linear_tables.user.shared"].shape == (3, 1)
        loaded = load_model(path)
        assert loaded.stream is not None
        users, items = torch.tensor([0, 2, 5, 6]), torch.tensor([0, 3, 7, 8])
        expected = model({"user": users, "item": items}).detach().double().numpy() + 3.5
        served = loaded.stream.predict(
            {"user": ["u0", "u2", "u5", "u6"], "item": [100, 103, 107, 108]}
        )
        np.testing.assert_array_equal(served, expected)
        assert loaded.model.id_tables()["user"].embedding_dim == STREAM_DIM + 1

    def test_first_format_tables_that_disagree_are_refused(
        self, model: StreamModel, tmp_path: Path
    ) -> None:
        contract = TestDeepFMHierarchical()
        deepfm = contract.build_model()
        path = _write_first_format(
            deepfm, tmp_path / "first.pt", dict(contract.options), name="deepfm"
        )
        saved = torch.load(path)
        saved["state_dict"]["model.embedder.linear_tables.item.position_of_id"][0] = 1
        torch.save(saved, path)
        with pytest.raises(DataError, match="'item' differ in 'position_of_id'"):
            load_model(path)

    def test_save_stream_model_writes_the_second_format(
        self, model: StreamModel, tmp_path: Path
    ) -> None:
        expected = torch.load(
            _write_second_format(model, tmp_path / "second.pt", dict(self.options)),
            weights_only=True,
        )
        raw = stream_raw_ids()
        raw["item"] = list(np.arange(100, 100 + STREAM_ITEMS))  # numpy ints: saved as int
        now = torch.load(
            save_stream_model(
                model,
                tmp_path / "now.pt",
                name="dnn",
                embedding_dim=STREAM_DIM,
                options=self.options,
                objective="mse",
                rating_offset=3.5,
                raw_ids=raw,
            ),
            weights_only=True,
        )
        assert now.keys() == expected.keys()
        for key in expected.keys() - {"state_dict"}:
            assert now[key] == expected[key], key
        assert now["state_dict"].keys() == expected["state_dict"].keys()
        for key, value in expected["state_dict"].items():
            if isinstance(value, torch.Tensor):
                assert torch.equal(now["state_dict"][key], value), key
            else:
                assert now["state_dict"][key] == value, key


def test_a_file_of_another_kind_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.pt"
    torch.save({"format": "something/1"}, path)
    with pytest.raises(DataError, match="not a leanrec stream model"):
        load_stream_model(path)
    with pytest.raises(DataError, match="stream model file not found"):
        load_stream_model(tmp_path / "missing.pt")


# ---------------------------------------------------------------------- serving without search
SERVE = textwrap.dedent(
    """
    import json, sys
    import torch
    torch.set_num_threads(1)
    from leanrec.models import load_model

    out = []
    for path in sys.argv[1:]:
        loaded = load_model(path)
        served = loaded.stream
        known = served.predict({"user": ["u0", "u1", "u2", "u5"], "item": [100, 101, 103, 106]})
        unseen = served.predict({"user": ["u-new"], "item": [100]})
        table = served.model.id_tables()["user"]
        new = served.known_sizes["user"]  # the cold index every unseen ID is scored at
        out.append({
            "family": loaded.family,
            "known": known.tolist(),
            "unseen": unseen.tolist(),
            "flags": served.is_known("user", ["u0", "u-new"]).tolist(),
            "position": int(table.positions(torch.tensor([new]))[0]),
            "reads_level_1": bool(torch.equal(table.lookup(torch.tensor([new])), table.shared[:1])),
        })
    out.append(sorted(m for m in sys.modules if m.startswith("leanrec.search")))
    print(json.dumps(out))
    """
)


def test_a_saved_model_serves_in_a_process_that_never_imports_search(
    tmp_path: Path, one_torch_thread: None
) -> None:
    expected = []
    paths = []
    for contract in (TestDNNHierarchical(), TestDeepFMHierarchical()):
        model = contract.build_model()
        paths.append(str(contract.save(model, tmp_path / f"{contract.model_name}.pt")))
        logits = model({"user": torch.tensor([0, 1, 2, 5]), "item": torch.tensor([0, 1, 3, 6])})
        expected.append(torch.sigmoid(logits.detach().double()).numpy())
    done = subprocess.run(
        [sys.executable, "-c", SERVE, *paths], capture_output=True, text=True, check=True
    )
    *served, search_modules = json.loads(done.stdout)
    assert search_modules == []
    for scores, result in zip(expected, served, strict=True):
        assert result["family"] == "stream"
        np.testing.assert_array_equal(result["known"], scores)  # same scores for known IDs
        assert len(result["unseen"]) == 1 and 0.0 < result["unseen"][0] < 1.0
        assert result["flags"] == [True, False]  # the unseen ID is flagged cold
        assert result["position"] == 0 and result["reads_level_1"]
