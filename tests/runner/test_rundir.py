"""Run directories, row stores, registries and the final-evaluation guard."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import numpy as np
import pytest

from leanrec.runner import (
    Registry,
    RowStore,
    RunDirectory,
    TestDataReadError,
    atomic_write_text,
    final_evaluation,
    guard_test_data,
    jsonable,
)


def test_row_store_replaces_a_row_with_the_same_key_and_persists(tmp_path: Path) -> None:
    store = RowStore(tmp_path / "rows.json", ("method", "seed"))
    store.add({"method": "su", "seed": 0, "auc": 0.5})
    store.add({"method": "su", "seed": 1, "auc": 0.6})
    store.add({"method": "su", "seed": 0, "auc": 0.7})  # rerun of a cell: replaced in place
    assert [r["auc"] for r in store] == [0.7, 0.6]
    reread = RowStore(tmp_path / "rows.json", ("method", "seed"))
    assert reread.rows == store.rows
    assert reread.get(method="su", seed=1) == {"method": "su", "seed": 1, "auc": 0.6}
    assert not reread.has(method="su", seed=2)
    assert reread.select(auc=0.6) == [{"method": "su", "seed": 1, "auc": 0.6}]


def test_row_store_refuses_rows_without_their_key_and_bad_files(tmp_path: Path) -> None:
    store = RowStore(tmp_path / "rows.json", ("method", "seed"))
    with pytest.raises(KeyError, match="seed"):
        store.add({"method": "su"})
    with pytest.raises(TypeError, match="key fields"):
        store.get(method="su")
    (tmp_path / "torn.json").write_text('[{"method": "su"')
    with pytest.raises(ValueError, match=r"torn\.json"):
        RowStore(tmp_path / "torn.json", ("method",))


def test_atomic_write_leaves_no_temporary_file(tmp_path: Path) -> None:
    path = atomic_write_text(tmp_path / "a" / "table.md", "| x |\n")
    assert path.read_text() == "| x |\n"
    assert os.listdir(tmp_path / "a") == ["table.md"]


@dataclasses.dataclass
class _Config:
    name: str = "x"
    ks: tuple[int, ...] = (5, 10)
    path: Path = Path("/tmp/data")


def test_jsonable_turns_dataclasses_tuples_paths_and_numpy_into_json() -> None:
    value = jsonable({"config": _Config(), "n": np.int64(3), "v": np.array([0.5, 1.5])})
    assert value == {
        "config": {"name": "x", "ks": [5, 10], "path": "/tmp/data"},
        "n": 3,
        "v": [0.5, 1.5],
    }


def test_run_directory_writes_its_files_and_a_log(tmp_path: Path) -> None:
    lines: list[str] = []
    run = RunDirectory(tmp_path / "run", config=_Config(), log=lines.append)
    assert json.loads((run.path / "config.json").read_text())["ks"] == [5, 10]
    run.log("stage 1")
    run.write_results({"rows": 2})
    run.write_table("| a |\n")
    assert lines == ["stage 1"]
    assert (run.path / "run.log").read_text().endswith(" stage 1\n")
    assert run.read_json("results.json") == {"rows": 2}
    assert run.read_json("absent.json", default={}) == {}
    assert run.table() == "| a |\n"
    with run.figure("plot.png", ncols=2) as (_, axes):
        assert axes.shape == (1, 2)
        axes[0, 0].plot([0, 1], [1, 0])
    assert (run.path / "plot.png").read_bytes()[:4] == b"\x89PNG"


@dataclasses.dataclass(frozen=True)
class _Method:
    name: str


def test_registry_resolves_names_in_order_and_lists_the_known_ones() -> None:
    methods: Registry[_Method] = Registry("test method")
    for name in ("su", "sr", "ciess"):
        methods.add(_Method(name))
    assert methods.names() == ("su", "sr", "ciess")
    assert [m.name for m in methods.resolve(["ciess", "su"])] == ["ciess", "su"]
    assert "sr" in methods and "pep" not in methods
    with pytest.raises(ValueError, match=r"\['pep', 'x'\]; known: su, sr, ciess"):
        methods.resolve(["pep", "su", "x"])
    with pytest.raises(ValueError, match="registered twice"):
        methods.add(_Method("su"))


def test_guarded_test_data_is_read_only_in_the_final_evaluation() -> None:
    data = guard_test_data([3, 1, 2], name="test users")
    assert isinstance(data, list)  # isinstance sees the wrapped type
    with pytest.raises(TestDataReadError, match="test users read"):
        len(data)
    with pytest.raises(TestDataReadError):
        data.index(1)
    with final_evaluation():
        assert len(data) == 3
        assert sorted(data) == [1, 2, 3]
        assert data[0] == 3
    assert data.reads >= 3  # type: ignore[attr-defined]  # list() also asks len()
    with pytest.raises(TestDataReadError):
        list(data)
