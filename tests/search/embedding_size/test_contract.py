"""The embedding-size experiment keeps the policy contract (tests/search/contract.py)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from leanrec.data.interactions import Split
from leanrec.search.base import ExperimentResult
from leanrec.search.embedding_size import EmbeddingSizeExperiment, budget_values, run_experiment
from leanrec.train.bpr import TrainerConfig
from tests.search.contract import PolicyContract
from tests.search.embedding_size.search_job import tiny_config, tiny_split_and_model

T = TypeVar("T")


class TestEmbeddingSizeContract(PolicyContract):
    """CIESS, SU and MagPrune at two budgets on 120 x 80 synthetic interactions (about 1 s)."""

    other_setting = ("search.seed", 99)

    run_experiment = staticmethod(run_experiment)

    def make_experiment(
        self, out_dir: Path, seed: int, guard_test: Callable[[T], T]
    ) -> tuple[Any, dict[str, Any]]:
        split, _ = tiny_split_and_model(16)
        trainer = TrainerConfig(
            max_epochs=2, batch_size=512, learning_rate=0.01, eval_every=1, ks=[5, 20]
        )
        search = dataclasses.replace(
            tiny_config(),
            episodes=1,
            iterations=2,
            pretrain=trainer,
            retrain=trainer,
            target_sparsities=(0.8, 0.9),
            top_masks=1,
            seed=seed,
        )
        experiment = EmbeddingSizeExperiment(
            dataset="synthetic",
            model="mf",
            out_dir=str(out_dir),
            methods=("ciess", "su", "magprune"),
            search=search,
        )
        guarded = Split(split.train, split.valid, guard_test(split.test))
        return experiment, {"split": guarded}

    def budget_violations(self, result: ExperimentResult) -> list[Any]:
        """Rows below their target sparsity ``c``, and packed tables above ``c``'s budget:
        ``floor((1 - c) N d_max)`` float32 values plus the int32 offsets of the two ragged
        tables (users and items, ``N + 2`` of them)."""
        n_entities = result.summary["users"] + result.summary["items"]
        max_dim = 16
        broken = [r for r in result.rows if r["sparsity"] < r["target_sparsity"]]
        for row in result.rows:
            if "packed_bytes" in row:
                allowed = 4 * budget_values(n_entities, max_dim, row["target_sparsity"])
                if row["packed_bytes"] > allowed + 4 * (n_entities + 2):
                    broken.append(row)
        assert any("packed_bytes" in r for r in result.rows), "no packed table was checked"
        return broken
