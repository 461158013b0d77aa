"""AMEIR's two tables keep the policy contract (tests/search/contract.py).

CTR: a tiny synthetic behaviour split, DNN and DeepFM against AMEIR, single-stage one-shot
search and random search on a sample budget (the wall-time budget would differ run to run).
Next-item: a tiny cycle dataset, GRU4Rec against AMEIR's Step 1.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from leanrec.data.behavior import BehaviorSplit
from leanrec.data.sequential import NextItemSplit
from leanrec.search.architecture.config import ArchitectureExperiment, RetrievalExperiment
from leanrec.search.architecture.experiment import run_experiment
from leanrec.search.base import ExperimentResult
from tests.models.ctr.synthetic import make_samples
from tests.search.architecture.test_retrieval import _config, _cycle_split
from tests.search.architecture.test_search import tiny_config
from tests.search.contract import PolicyContract

T = TypeVar("T")


class TestCTRArchitectureContract(PolicyContract):
    run_experiment = staticmethod(run_experiment)

    def make_experiment(
        self, out_dir: Path, seed: int, guard_test: Callable[[T], T]
    ) -> tuple[Any, dict[str, Any]]:
        train, _ = make_samples(600, seed=1)
        valid, _ = make_samples(200, seed=2)
        test, _ = make_samples(200, seed=3)
        split = BehaviorSplit(train, valid, guard_test(test), train.feature_map, name="tiny")
        experiment = ArchitectureExperiment(
            out_dir=str(out_dir),
            baselines=("dnn", "deepfm"),
            methods=("ameir", "one_shot", "random"),
            seeds=(seed,),
            baseline_epochs=1,
            random_budget="samples",
            config=tiny_config(
                embedding_dim=8, supernet_epochs=0.5, evolution_cycles=1, retrain_epochs=1
            ),
        )
        return experiment, {"split": split}

    def budget_violations(self, result: ExperimentResult) -> list[Any]:
        budget = result.summary["parameter_budget"]
        best = result.summary["best_baseline"]
        searched = [r for r in result.rows if r["method"] in ("ameir", "one_shot", "random")]
        assert len(searched) == 3 and budget is not None  # the check is not vacuous
        assert budget == result.summary["methods"][best]["parameters"]["mean"]
        return [r for r in searched if r["parameters"] > budget]


class TestNextItemArchitectureContract(PolicyContract):
    run_experiment = staticmethod(run_experiment)

    def make_experiment(
        self, out_dir: Path, seed: int, guard_test: Callable[[T], T]
    ) -> tuple[Any, dict[str, Any]]:
        base = _cycle_split(n_users=150)
        split = dataclasses.replace(base, test=guard_test(base.test))

        def splits(_: int) -> tuple[NextItemSplit, NextItemSplit]:
            return split, split

        experiment = RetrievalExperiment(
            out_dir=str(out_dir),
            baselines=("gru4rec",),
            seeds=(seed,),
            baseline_epochs=2,
            max_length=8,
            config=_config(supernet_epochs=2, retrain_epochs=2, sampled_children=4, top_children=2),
        )
        return experiment, {"splits": splits}

    def budget_violations(self, result: ExperimentResult) -> list[Any]:
        # the next-item table has no parameter budget: every row is one of its methods, once
        assert sorted((r["method"], r["seed"]) for r in result.rows) == [
            ("ameir", self.seed),
            ("gru4rec", self.seed),
        ]
        return []
