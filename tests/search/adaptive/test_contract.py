"""The adaptive-architecture controller keeps the policy contract (tests/search/contract.py) on
a tiny synthetic stream."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from leanrec.data.events import EventStream
from leanrec.data.synthetic_stream import make_synthetic_stream
from leanrec.search.adaptive import AdaptiveConfig, AdaptiveExperiment, run_experiment
from leanrec.search.base import ExperimentResult
from tests.search.contract import PolicyContract

T = TypeVar("T")


def tiny_stream() -> EventStream:
    return make_synthetic_stream(
        2400, n_users=150, n_items=100, dim=4, rating_noise=0.3, seed=3, name="tiny"
    )


def tiny_experiment(out_dir: Path, seed: int, **changes: Any) -> AdaptiveExperiment:
    options: dict[str, Any] = {
        "dataset": "tiny",
        "out_dir": str(out_dir),
        "sessions": 3,
        "warmup_sessions": 2,
        "chunk_size": 200,
        "methods": ("fixed_small", "loss_threshold", "adaptive"),
        "seeds": (seed,),
        "lambda_grid": (0.0, 0.05),
        "sweep": False,
        "controller": AdaptiveConfig(initial_widths=(32, 16), max_width=48, max_depth=2),
        "log_every": 1,
    }
    options.update(changes)
    return AdaptiveExperiment(**options)


class TestAdaptiveContract(PolicyContract):
    other_setting = ("chunk_size", 77)
    run_experiment = staticmethod(run_experiment)
    kill_fractions = (0.3, 0.7)

    def make_experiment(
        self, out_dir: Path, seed: int, guard_test: Callable[[T], T]
    ) -> tuple[Any, dict[str, Any]]:
        stream = tiny_stream()
        experiment = tiny_experiment(out_dir, seed)
        warmup = stream[0 : stream.warmup_size(experiment.warmup_fraction)]
        return experiment, {"stream": guard_test(stream), "warmup": warmup}

    def budget_violations(self, result: ExperimentResult) -> list[Any]:
        """Sessions of the controller whose tower left its limits (widths 16..48, depth
        1..2 here: tighter than the defaults, so that the limits are reached)."""
        controlled = [r for r in result.rows if r["method"] == "adaptive"]
        assert controlled, "no controller row: the limit check would be vacuous"
        return [
            (r["penalty"], s["session"], s["widths"])
            for r in controlled
            for s in r["warmup_sessions"] + r["sessions"]
            if not 1 <= len(s["widths"]) <= 2 or not all(16 <= w <= 48 for w in s["widths"])
        ]


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread: None) -> None:
    """The experiment sets one torch thread itself; the fixture restores the default after."""


class TestAdaptiveVariantsContract(TestAdaptiveContract):
    """The same contract for the actor-critic (whose update waits across a session boundary,
    so a kill between two sessions must keep the waiting transition) and the leanrec preset
    with freeze protection (the capacity model's measurements live in the checkpoint)."""

    kill_fractions = (0.5,)

    def make_experiment(
        self, out_dir: Path, seed: int, guard_test: Callable[[T], T]
    ) -> tuple[Any, dict[str, Any]]:
        stream = tiny_stream()
        experiment = tiny_experiment(
            out_dir, seed, methods=("adaptive_a2c", "adaptive_leanrec_freeze"),
            leanrec_lambda_grid=(0.0,),
        )  # fmt: skip
        warmup = stream[0 : stream.warmup_size(experiment.warmup_fraction)]
        return experiment, {"stream": guard_test(stream), "warmup": warmup}

    def budget_violations(self, result: ExperimentResult) -> list[Any]:
        variants = ("adaptive_a2c", "adaptive_leanrec_freeze")
        controlled = [r for r in result.rows if r["method"] in variants]
        assert len(controlled) == 2, "a variant's row is missing: the limit check would be vacuous"
        return [
            (r["method"], s["session"], s["widths"])
            for r in controlled
            for s in r["warmup_sessions"] + r["sessions"]
            if not 1 <= len(s["widths"]) <= 2 or not all(16 <= w <= 48 for w in s["widths"])
        ]
