"""`python -m benchmarks.paper.ciess_presets run --max-hours H`: the variant's experiment runs
inside the time limit, and a stop at the limit ends the command cleanly (exit 0, resumable)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from benchmarks.paper import ciess_presets

from leanrec.search.embedding_size.deadline import check_time_limit


def _run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *extra: str) -> list[list[str]]:
    """``ciess_presets run --variant paper`` with the experiment replaced by a stand-in that
    reaches one checkpoint; returns the commands it was given."""
    commands: list[list[str]] = []

    def experiment(argv: list[str]) -> int:
        commands.append(argv)
        check_time_limit("the stand-in's checkpoint")
        return 0

    monkeypatch.setattr(ciess_presets, "leanrec", experiment)
    argv = ["ciess_presets", "run", "--variant", "paper", "--out", str(tmp_path), *extra]
    monkeypatch.setattr(sys, "argv", argv)
    ciess_presets.main()
    return commands


def test_a_variant_stopped_at_its_time_limit_exits_cleanly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    commands = _run(tmp_path, monkeypatch, "--max-hours", "0", "--", "--methods", "ciess")
    assert "time limit reached after the stand-in's checkpoint" in capsys.readouterr().out
    # the options after -- reach the experiment, after the variant's own (last one wins)
    assert commands[0][-2:] == ["--methods", "ciess"] and "--max-hours" not in commands[0]


def test_without_a_time_limit_the_variant_runs_through(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert len(_run(tmp_path, monkeypatch)) == 1
    assert "time limit" not in capsys.readouterr().out


def test_the_table_keeps_the_recorded_cells_of_run_directories_that_are_gone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    from benchmarks import common

    monkeypatch.setattr(common, "RESULTS_DIR", tmp_path / "results")
    runs = tmp_path / "runs"
    (runs / "paper").mkdir(parents=True)
    row = {"method": "ciess", "target_sparsity": 0.8, "sparsity": 0.81, "test_recall@20": 0.2}
    (runs / "paper" / "rows.json").write_text(json.dumps([row]))

    def table(*extra: str) -> dict[str, object]:
        argv = ["ciess_presets", "table", "--out", str(runs), "--targets", "0.8", "--tag", "t",
                *extra]  # fmt: skip
        monkeypatch.setattr(sys, "argv", argv)
        ciess_presets.main()
        written = json.loads((tmp_path / "results" / "ciess_presets--t.json").read_text())
        assert isinstance(written, dict)
        return written

    first = table()
    assert first["paper:ciess:0.8:test_recall@20"] == 0.2
    assert first["paper:su:0.8:status"] == "not run"
    # SU's row was measured in a directory that is gone by the next table
    (runs / "paper" / "rows.json").write_text(json.dumps([row, {**row, "method": "su"}]))
    table()
    (runs / "paper" / "rows.json").write_text(json.dumps([{**row, "test_recall@20": 0.3}]))
    kept = table()
    assert kept["paper:ciess:0.8:test_recall@20"] == 0.3  # a directory's rows win
    assert kept["paper:ciess:0.8:from_earlier_run"] is False
    assert kept["paper:su:0.8:test_recall@20"] == 0.2 and kept["paper:su:0.8:from_earlier_run"]
    assert kept["paper:sr:0.8:status"] == "not run"
    # a results file of another dataset or model is not mixed in
    with pytest.raises(SystemExit, match="holds ml-100k/lightgcn, not ml-100k/mf"):
        table("--model", "mf")
