"""DiPS keeps the policy contract (tests/search/contract.py) on a tiny synthetic table."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from leanrec.data.interactions import Interactions
from leanrec.data.streams import StreamSplit, UserStreams, user_split
from leanrec.search.base import ExperimentResult
from leanrec.search.sketch import SketchConfig, SketchExperiment, run_experiment
from tests.search.contract import PolicyContract

T = TypeVar("T")


def _streams(users: int = 30, length: int = 8, items: int = 12) -> UserStreams:
    rng = np.random.default_rng(5)
    user_ids = np.repeat(np.arange(users), length)
    item_ids = rng.integers(0, items, len(user_ids))
    ratings = np.clip(np.rint(2 + item_ids % 3 + rng.normal(0, 0.5, len(user_ids))), 1, 5)
    data = Interactions.from_raw(
        user_ids, item_ids, ratings=ratings, timestamps=np.tile(np.arange(length), users)
    )
    return UserStreams.from_interactions(data, min_length=2)


class TestSketchContract(PolicyContract):
    other_setting = ("config.learning_rate", 0.123)
    run_experiment = staticmethod(run_experiment)

    def make_experiment(
        self, out_dir: Path, seed: int, guard_test: Callable[[T], T]
    ) -> tuple[Any, dict[str, Any]]:
        split = user_split(_streams(), seed=seed)
        experiment = SketchExperiment(
            dataset="synthetic",
            out_dir=str(out_dir),
            methods=("random", "influence", "dips1"),
            sketch_sizes=(2,),
            update_periods=(1, 2),
            seeds=(seed,),
            config=SketchConfig(epochs=2, batch_users=8, queue_size=2, embedding_dim=8),
        )
        guarded = StreamSplit(split.train, split.valid, guard_test(split.test))
        return experiment, {"splits": {seed: guarded}}

    def budget_violations(self, result: ExperimentResult) -> list[Any]:
        # every row reports the longest sketch a test user held while being predicted
        return [r for r in result.rows if not 0 < r["max_sketch_length"] <= r["K"]]
