"""AutoAssign+ keeps the policy contract (tests/search/contract.py) on a tiny synthetic stream."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from leanrec.data.events import EventStream
from leanrec.data.synthetic_stream import make_synthetic_stream
from leanrec.search.base import ExperimentResult
from leanrec.search.shared_embedding import (
    AutoAssignConfig,
    SharedEmbeddingExperiment,
    run_experiment,
)
from tests.search.contract import PolicyContract

T = TypeVar("T")

CAP = 16_000
"""Embedding bytes AutoAssign+ may hold: below what it holds uncapped on this stream (20 KB,
checked in test_policy.py), above its per-ID state and smallest storage (about 11 KB)."""


def tiny_stream() -> EventStream:
    return make_synthetic_stream(
        2400, n_users=150, n_items=100, dim=4, rating_noise=0.3, seed=3, name="tiny"
    )


def tiny_experiment(out_dir: Path, seed: int, **changes: Any) -> SharedEmbeddingExperiment:
    options: dict[str, Any] = {
        "dataset": "tiny",
        "out_dir": str(out_dir),
        "embedding_dim": 16,
        "model_options": {"mlp_dims": (8,)},
        "chunk_size": 200,
        "methods": ("all_unique", "threshold_hierarchy", "autoassign"),
        "seeds": (seed,),
        "hierarchy_grid": (3, 6),
        "agent": AutoAssignConfig(max_bytes=CAP, batch_size=64, replay_size=2000),
        "checkpoint_every": 2,
        "log_every": 3,
    }
    options.update(changes)
    return SharedEmbeddingExperiment(**options)


class TestSharedEmbeddingContract(PolicyContract):
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
        capped = [r for r in result.rows if r["max_bytes"] is not None]
        assert capped, "no row ran under a byte cap: the budget check would be vacuous"
        return [
            r
            for r in capped
            if r["max_embedding_bytes"] > r["max_bytes"]
            or max(r["bytes_trace"]["bytes"]) > r["max_bytes"]
            or r["bytes"]["embedding"] > r["max_bytes"]
        ]


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread: None) -> None:
    """The experiment sets one torch thread itself; the fixture restores the default after."""
