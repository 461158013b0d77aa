"""The contract every learned policy's experiment keeps (see :mod:`leanrec.search.base`).

A policy's test module subclasses :class:`PolicyContract` in a few lines: it builds a tiny
experiment (synthetic data, seconds to run) and says how to read its budget off a row::

    class TestSketchContract(PolicyContract):
        run_experiment = staticmethod(run_experiment)

        def make_experiment(self, out_dir, seed, guard_test):
            return SketchExperiment(..., out_dir=str(out_dir)), {"streams": guard_test(...)}

        def budget_violations(self, result):
            return [r for r in result.rows if r["kept"] > r["K"]]

The tests:

- the budget is respected by every row (and the check is not vacuous: rows exist);
- the same seed gives the same rows (timing fields aside), in two fresh directories;
- a run killed part-way (a ``KeyboardInterrupt`` from its log at a chosen line) and rerun in
  the same directory ends with the rows of an uninterrupted run;
- a rerun in the same directory with a setting changed (``other_setting``) is refused before it
  writes anything;
- the test split is read only inside ``final_evaluation()``: the experiment runs with its
  test data behind :func:`leanrec.runner.guard_test_data`, and must read it there.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from leanrec.runner import guard_test_data
from leanrec.runner.final import GuardedTestData
from leanrec.search.base import ExperimentResult

T = TypeVar("T")

TIMING_WORDS = ("seconds", "per_second", "cpu_hours", "time", "timing", "written")
"""Row fields whose name holds one of these are wall-clock measurements: they differ between
two runs of the same seed and are left out of the comparisons (``written``: a timestamp)."""


PLACE_FIELDS = ("out_dir",)
"""Fields that name where a run writes (a summary holding the experiment's config holds its
``out_dir``): two runs in two fresh directories differ there by construction."""


def _with_field(config: Any, path: list[str], value: Any) -> Any:
    """``config`` (a dataclass) with the field at ``path`` (nested names) set to ``value``."""
    head, *rest = path
    inner = _with_field(getattr(config, head), rest, value) if rest else value
    return dataclasses.replace(config, **{head: inner})


class _Killed(KeyboardInterrupt):
    """The interruption the resume test injects."""


def comparable(value: Any) -> Any:
    """``value`` without its timing and place fields (recursively), for comparing two runs."""
    if isinstance(value, dict):
        return {
            k: comparable(v)
            for k, v in value.items()
            if not any(word in k for word in TIMING_WORDS) and k not in PLACE_FIELDS
        }
    if isinstance(value, list):
        return [comparable(v) for v in value]
    return value


class PolicyContract:
    """Mixin: subclass it with a tiny experiment of the policy (see the module docstring)."""

    run_experiment: Callable[..., ExperimentResult]
    """The policy's ``run_experiment(experiment, log=..., **inputs)``."""

    seed: int = 0
    kill_fractions: tuple[float, ...] = (0.5,)
    """Where the resume test kills the run: a fraction of the log lines of a full run."""
    other_setting: tuple[str, Any] = ("", None)
    """A setting a rerun may not change and a value it was not run with, as
    ``("field.nested_field", value)``: the rerun test expects it refused."""

    def make_experiment(
        self, out_dir: Path, seed: int, guard_test: Callable[[T], T]
    ) -> tuple[Any, dict[str, Any]]:
        """The tiny experiment and the extra keyword inputs of ``run_experiment`` (e.g.
        in-memory data). Pass the test part of the data through ``guard_test``; the identity
        is given outside the guard test."""
        raise NotImplementedError

    def budget_violations(self, result: ExperimentResult) -> list[Any]:
        """The rows (or descriptions) of ``result`` that break their budget; [] when none."""
        raise NotImplementedError

    # -------------------------------------------------------------------------- helpers

    def _run(
        self,
        out_dir: Path,
        log: Callable[[str], None] | None = None,
        guard: Callable[[Any], Any] | None = None,
    ) -> ExperimentResult:
        experiment, inputs = self.make_experiment(out_dir, self.seed, guard or (lambda x: x))
        return type(self).run_experiment(experiment, log=log or (lambda _: None), **inputs)

    # ---------------------------------------------------------------------------- tests

    def test_budget_respected(self, tmp_path: Path) -> None:
        result = self._run(tmp_path / "run")
        assert result.rows, "the experiment finished no row: nothing was checked"
        assert self.budget_violations(result) == []

    def test_same_seed_same_result(self, tmp_path: Path) -> None:
        first = self._run(tmp_path / "a")
        second = self._run(tmp_path / "b")
        assert comparable(first.rows) == comparable(second.rows)
        assert comparable(first.summary) == comparable(second.summary)

    def test_killed_run_resumes_to_the_uninterrupted_result(self, tmp_path: Path) -> None:
        lines: list[str] = []
        whole = self._run(tmp_path / "whole", log=lines.append)
        assert len(lines) >= 2, "the run logs too little to be killed part-way"
        for fraction in self.kill_fractions:
            kill_at = max(1, int(len(lines) * fraction))
            out = tmp_path / f"killed-{kill_at}"
            seen = 0

            def log(_: str, kill_at: int = kill_at) -> None:
                nonlocal seen
                seen += 1
                if seen == kill_at:
                    raise _Killed(f"killed at log line {kill_at}")

            with pytest.raises(_Killed):
                self._run(out, log=log)
            resumed = self._run(out)
            assert comparable(resumed.rows) == comparable(whole.rows), f"kill at {kill_at}"
            assert comparable(resumed.summary) == comparable(whole.summary)

    def test_a_rerun_with_other_settings_is_refused_before_it_writes(self, tmp_path: Path) -> None:
        out = tmp_path / "run"
        self._run(out)
        written = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
        experiment, inputs = self.make_experiment(out, self.seed, lambda x: x)
        path, value = self.other_setting
        assert path, "the contract names no setting to change (other_setting)"
        changed = _with_field(experiment, path.split("."), value)
        assert changed != experiment, f"{path} = {value!r} is the run's own value"
        with pytest.raises(ValueError, match=rf"other settings: .*{re.escape(path)} "):
            type(self).run_experiment(changed, log=lambda _: None, **inputs)
        after = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
        assert after == written  # not even config.json was touched

    def test_test_split_is_read_only_in_the_final_evaluation(self, tmp_path: Path) -> None:
        guarded: list[GuardedTestData] = []

        def guard(data: Any) -> Any:
            wrapped = guard_test_data(data)
            guarded.append(wrapped)  # type: ignore[arg-type]
            return wrapped

        result = self._run(tmp_path / "run", guard=guard)
        assert guarded, "make_experiment passed no test data through guard_test"
        assert result.rows
        assert all(g.reads > 0 for g in guarded), "the test data was never evaluated"
