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

import pytest

from leanrec.data.behavior import BehaviorSplit
from leanrec.data.sequential import NextItemSplit
from leanrec.search.architecture.config import ArchitectureExperiment, RetrievalExperiment
from leanrec.search.architecture.experiment import run_experiment
from leanrec.search.base import ExperimentResult
from tests.models.ctr.synthetic import make_samples
from tests.search.architecture.test_retrieval import _config, _cycle_split
from tests.search.architecture.test_search import tiny_config
from tests.search.contract import PolicyContract, comparable

T = TypeVar("T")


class TestCTRArchitectureContract(PolicyContract):
    other_setting = ("baseline_epochs", 7)
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
    other_setting = ("max_length", 7)
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


def test_a_baseline_killed_mid_training_resumes_from_its_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A CTR baseline checkpoints every validated epoch: killed after epoch 1 of 2, the rerun
    trains epoch 2 only and stores the uninterrupted run's row."""
    import leanrec.train.loop as loop

    def baseline_only(out: Path) -> tuple[ArchitectureExperiment, dict[str, Any]]:
        experiment, inputs = TestCTRArchitectureContract().make_experiment(out, 0, lambda x: x)
        only = dataclasses.replace(experiment, baselines=("dnn",), methods=(), baseline_epochs=2)
        return only, inputs

    experiment, inputs = baseline_only(tmp_path / "whole")
    whole = run_experiment(experiment, log=lambda _: None, **inputs)
    real_save = loop.save_atomic
    saves: list[Path] = []

    def save_then_die(state: Any, path: Path) -> Any:
        written = real_save(state, path)
        saves.append(path)
        if len(saves) == 1:
            raise KeyboardInterrupt  # killed right after epoch 1's checkpoint
        return written

    monkeypatch.setattr(loop, "save_atomic", save_then_die)
    experiment, inputs = baseline_only(tmp_path / "killed")
    with pytest.raises(KeyboardInterrupt):
        run_experiment(experiment, log=lambda _: None, **inputs)
    assert saves == [tmp_path / "killed" / "dnn_seed0.pt"]
    resumed = run_experiment(experiment, log=lambda _: None, **inputs)
    assert len(saves) == 2  # the rerun validated epoch 2 only: epoch 1 was not trained again
    assert comparable(resumed.rows) == comparable(whole.rows)
    assert not (tmp_path / "killed" / "dnn_seed0.pt").exists()  # gone once the row is stored
