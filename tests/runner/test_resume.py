"""A run directory is resumed only with the settings that wrote its rows."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from leanrec.runner.resume import check_resumable, has_rows
from leanrec.runner.rundir import RunDirectory


@dataclass
class Inner:
    rate: float = 0.1
    steps: int = 5


@dataclass
class Table:
    dataset: str = "ml-100k"
    seeds: tuple[int, ...] = (0,)
    grid: tuple[float, ...] = (0.0, 0.5)
    inner: Inner = field(default_factory=Inner)


def _written(tmp_path: Path, experiment: Table) -> Path:
    run = RunDirectory(tmp_path / "run", config=experiment, log=None)
    run.rows(("seed",)).add({"seed": 0, "auc": 0.7})
    return run.path


def test_same_settings_or_resumable_changes_pass(tmp_path: Path) -> None:
    path = _written(tmp_path, Table())
    check_resumable(Table(), path, Table(), resumable=("seeds",))
    check_resumable(Table(seeds=(0, 1)), path, Table(), resumable=("seeds",))
    check_resumable(Table(grid=(9.0,)), tmp_path / "empty", Table(), resumable=())  # no rows


def test_changed_settings_are_named_and_nothing_is_written(tmp_path: Path) -> None:
    path = _written(tmp_path, Table())
    before = (path / "rows.json").read_text()
    changed = Table(grid=(0.0, 0.1), inner=Inner(rate=0.2))
    with pytest.raises(ValueError) as error:
        check_resumable(changed, path, Table(), resumable=("seeds",))
    message = str(error.value)
    assert "grid [0.0, 0.5] -> [0.0, 0.1]" in message
    assert "inner.rate 0.1 -> 0.2" in message and "steps" not in message  # the field, not the dict
    assert "nothing was written" in message
    assert (path / "rows.json").read_text() == before


def test_a_field_added_since_counts_as_its_default(tmp_path: Path) -> None:
    path = _written(tmp_path, Table())
    stored = json.loads((path / "config.json").read_text())
    del stored["grid"]
    del stored["inner"]["steps"]
    (path / "config.json").write_text(json.dumps(stored))
    check_resumable(Table(), path, Table(), resumable=())
    with pytest.raises(ValueError, match="steps"):
        check_resumable(Table(inner=Inner(steps=6)), path, Table(), resumable=())


@dataclass
class Outer:
    search: Table = field(default_factory=Table)


def test_a_nested_field_may_be_resumable_and_added_fields_count_as_defaults_at_any_depth(
    tmp_path: Path,
) -> None:
    run = RunDirectory(tmp_path / "run", config=Outer(), log=None)
    run.rows(("seed",)).add({"seed": 0})
    stored = json.loads((run.path / "config.json").read_text())
    del stored["search"]["inner"]["steps"]  # a field of a nested config added since that run
    (run.path / "config.json").write_text(json.dumps(stored))
    more_seeds = Outer(Table(seeds=(0, 1)))
    check_resumable(more_seeds, run.path, Outer(), resumable=("search.seeds",))
    with pytest.raises(ValueError, match=r"search\.seeds \[0\] -> \[0, 1\]\."):
        check_resumable(more_seeds, run.path, Outer(), resumable=("seeds",))  # not the nested one
    with pytest.raises(ValueError, match=r"search\.inner\.steps 5 -> 6\."):
        check_resumable(Outer(Table(inner=Inner(steps=6))), run.path, Outer(), resumable=())


def test_a_checkpoint_counts_as_work_done(tmp_path: Path) -> None:
    run = RunDirectory(tmp_path / "run", config=Table(), log=None)  # no row yet
    check_resumable(Table(grid=(0.5,)), run.path, Table(), resumable=(), row_files=("state.pt",))
    (run.path / "state.pt").write_bytes(b"PK\x03\x04\xff\xfe")  # a search's state: not JSON
    assert has_rows(run.path / "state.pt")
    with pytest.raises(ValueError, match=r"holds the work \(state\.pt\)"):
        check_resumable(
            Table(grid=(0.5,)), run.path, Table(), resumable=(), row_files=("state.pt",)
        )


def test_unreadable_config_and_torn_rows(tmp_path: Path) -> None:
    path = _written(tmp_path, Table())
    (path / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"config\.json: cannot read"):
        check_resumable(Table(), path, Table(), resumable=())
    (path / "torn.json").write_text("[{")
    assert has_rows(path / "torn.json")
    (path / "empty.json").write_text("[]")
    assert not has_rows(path / "empty.json")


def test_the_refusal_names_every_row_file_then_the_changes(tmp_path: Path) -> None:
    path = _written(tmp_path, Table())
    (path / "scores.json").write_text('[{"seed": 0}]')
    changed = Table(dataset="ml-1m", grid=(0.5,))
    with pytest.raises(ValueError) as error:
        check_resumable(
            changed, path, Table(), resumable=(), row_files=("rows.json", "scores.json")
        )
    assert str(error.value) == (
        f"{path} holds the work (rows.json, scores.json) of a run with other settings: "
        'dataset "ml-100k" -> "ml-1m"; grid [0.0, 0.5] -> [0.5]. Resume it with its own '
        "settings (its config.json), or write to another output directory (--out); nothing "
        "was written"
    )
