"""The part of a stream experiment's row that every stream policy shares
(:mod:`leanrec.runner.stream_rows`), on a toy policy: a row sums the stream's values times its
method's factor, one step per value, checkpointing ``(steps done, partial sum)`` after every
step so that a killed row resumes."""

from __future__ import annotations

import json
import pickle
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch

from leanrec.runner import Registry, SerialExecutor
from leanrec.runner.executors import InProcess, Shared
from leanrec.runner.stream_rows import (
    SharedStreamRunner,
    StreamRow,
    StreamRowRunner,
    remove_empty_checkpoints,
    row_key,
    row_tag,
)
from tests.runner.pickling import PicklingExecutor, comparable

KEY = ("method", "knob", "seed")
VALUES = list(range(1, 11))  # the toy stream: 1..10, sum 55


@dataclass(frozen=True)
class Settings:
    num_threads: int = 0
    log_every: int = 3


@dataclass(frozen=True)
class Job:
    method: str
    knob: float | None
    seed: int
    chosen: bool = True

    @property
    def tag(self) -> str:
        return row_tag(self, KEY)


@dataclass(frozen=True)
class Scale:
    name: str
    factor: float


METHODS: Registry[Scale] = Registry("toy method")
METHODS.add(Scale("double", 2.0))
METHODS.add(Scale("triple", 3.0))


class SumRunner(StreamRowRunner[Settings, Job, Scale]):
    """Sums ``factor * value`` over the stream (+ ``offset``, a field of its own)."""

    methods = METHODS

    def __init__(
        self, experiment: Settings, stream: Shared[Any], run_path: str, log: Any, offset: float
    ) -> None:
        super().__init__(experiment, stream, run_path, log)
        self.offset = offset

    def stream_row(self, job: Job, method: Scale, stream: Any, row: StreamRow) -> dict[str, Any]:
        saved = row.checkpoints / "partial.json"
        start, total = json.loads(saved.read_text()) if saved.exists() else (0, 0.0)
        for step in range(start, len(stream)):
            total += method.factor * stream[step]
            row.checkpoints.mkdir(exist_ok=True)
            saved.write_text(json.dumps([step + 1, total]))
            if row.due(step):
                row.log(f"step {step}, sum {total:g}")
        return {**row_key(job, KEY), "sum": total + self.offset, "resumed_at": start}


def _runner(run: Path, log: Any = None, **settings: Any) -> SumRunner:
    return SumRunner(Settings(**settings), InProcess(VALUES), str(run), log, offset=0.5)


# ------------------------------------------------------------------------------ names and keys
def test_row_tags_keep_both_policies_folder_names() -> None:
    # (method, λ, seed) as the adaptive rows, (objective, method, knob, seed) as AutoAssign+'s
    assert Job("double", None, 1).tag == "double-none-seed1"
    assert Job("double", 0.005, 0).tag == "double-0.005-seed0"
    assert Job("double", 2.0, 12).tag == "double-2-seed12"
    assert Job("double", 0.25, 1234567).tag == "double-0.25-seed1234567"  # not 1.23457e+06
    four = SimpleNamespace(objective="mse", method="qr", knob=16, seed=3, chosen=False)
    assert row_tag(four, ("objective", "method", "knob", "seed")) == "mse-qr-16-seed3"


def test_row_key_follows_the_key_not_the_fields() -> None:
    job = Job("triple", 0.5, 2)
    assert list(row_key(job, ("seed", "method"))) == ["seed", "method"]
    assert row_key(job, KEY) == {"method": "triple", "knob": 0.5, "seed": 2}


# ------------------------------------------------------------------------------ progress cadence
def test_a_progress_line_is_due_every_log_every_steps_and_only_with_a_log() -> None:
    lines: list[str] = []
    row = StreamRow("t", Path("unused"), log_every=3, sink=lines.append)
    assert [step for step in range(10) if row.due(step)] == [2, 5, 8]
    assert all(StreamRow("t", Path("unused"), 1, lines.append).due(s) for s in range(4))
    row.log("hello")
    assert lines == ["t: hello"]
    silent = StreamRow("t", Path("unused"), log_every=3)
    assert not any(silent.due(step) for step in range(10))
    silent.log("nobody hears this")
    assert lines == ["t: hello"]


def test_a_row_logs_its_start_and_every_log_every_steps(tmp_path: Path) -> None:
    lines: list[str] = []
    row = _runner(tmp_path, lines.append, log_every=4)(Job("double", 1.0, 0))
    # 2 * (1 + 2 + 3 + 4) = 20 after step 3; 2 * 36 = 72 after step 7
    assert lines == [
        "double-1-seed0: streaming",
        "double-1-seed0: step 3, sum 20",
        "double-1-seed0: step 7, sum 72",
    ]
    assert row["sum"] == 2 * 55 + 0.5
    # the key first, the hook's fields, the wall time last
    assert list(row) == ["method", "knob", "seed", "sum", "resumed_at", "seconds"]
    assert row["seconds"] >= 0


# ------------------------------------------------------------------------------ checkpoints
def test_each_row_checkpoints_in_its_own_folder_removed_when_it_is_done(tmp_path: Path) -> None:
    seen: dict[str, Path] = {}

    class Watching(SumRunner):
        def stream_row(self, job: Job, method: Scale, stream: Any, row: StreamRow) -> Any:
            seen[job.tag] = row.checkpoints
            assert row.checkpoints.parent.is_dir()  # checkpoints/ is there before the pass
            out = super().stream_row(job, method, stream, row)
            assert (row.checkpoints / "partial.json").exists()
            return out

    runner = Watching(Settings(), InProcess(VALUES), str(tmp_path), None, offset=0.0)
    runner(Job("double", None, 0))
    runner(Job("triple", None, 0))
    assert seen == {
        "double-none-seed0": tmp_path / "checkpoints" / "double-none-seed0",
        "triple-none-seed0": tmp_path / "checkpoints" / "triple-none-seed0",
    }
    assert not any(path.exists() for path in seen.values())
    assert (tmp_path / "checkpoints").is_dir()  # empty: the driver decides
    remove_empty_checkpoints(tmp_path)
    assert not (tmp_path / "checkpoints").exists()
    remove_empty_checkpoints(tmp_path)  # nothing to remove: no error


def test_a_killed_row_resumes_from_its_folder_and_leaves_the_others(tmp_path: Path) -> None:
    killed = tmp_path / "checkpoints" / "double-none-seed0"
    killed.mkdir(parents=True)
    (killed / "partial.json").write_text(json.dumps([4, 2.0 * (1 + 2 + 3 + 4)]))
    other = tmp_path / "checkpoints" / "triple-none-seed0"
    other.mkdir()
    (other / "partial.json").write_text(json.dumps([1, 3.0]))

    row = _runner(tmp_path)(Job("double", None, 0))
    assert row["resumed_at"] == 4 and row["sum"] == 2 * 55 + 0.5  # as if never killed
    assert not killed.exists() and (other / "partial.json").exists()
    remove_empty_checkpoints(tmp_path)
    assert other.exists()  # a row is left to resume


def test_an_unknown_method_fails_before_any_folder_is_made(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown toy method 'halve'"):
        _runner(tmp_path)(Job("halve", None, 0))
    assert not (tmp_path / "checkpoints").exists()


# ------------------------------------------------------------------------------ as executor jobs
def test_runners_are_picklable_and_give_the_serial_rows(tmp_path: Path) -> None:
    jobs = [Job("double", None, 0), Job("triple", 0.5, 1)]
    serial = SerialExecutor(show_progress=False)
    here = serial.map(_runner(tmp_path / "here"), jobs)
    shipped = PicklingExecutor()
    runner = SumRunner(Settings(), shipped.share(VALUES), str(tmp_path / "shipped"), None, 0.5)
    there = shipped.map(runner, jobs)
    assert comparable(there) == comparable(here)
    assert [r["sum"] for r in here] == [110.5, 165.5]
    copy = pickle.loads(pickle.dumps(runner))
    assert (copy.offset, copy.run_path, copy.log, copy.methods) == (
        0.5, str(tmp_path / "shipped"), None, METHODS,
    )  # fmt: skip


def test_the_stream_is_opened_with_the_experiments_threads(one_torch_thread: None) -> None:
    stream = SharedStreamRunner(Settings(num_threads=2), InProcess(VALUES)).open_stream()
    assert stream is VALUES and torch.get_num_threads() == 2
    SharedStreamRunner(Settings(num_threads=0), InProcess(VALUES)).open_stream()
    assert torch.get_num_threads() == 2  # 0: left as it is
