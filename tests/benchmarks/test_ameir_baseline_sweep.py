"""The equal-tuning sweep of AMEIR's baselines (`python -m benchmarks.paper.ameir_baseline_sweep`,
docs/results/architecture.md): grid sizes, selection on validation only, resume, lanes, and the
next-item protocol end to end on a tiny cyclic dataset."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from benchmarks.paper.ameir_baseline_sweep import (
    CTR_GRID,
    CTR_PROPOSED_CONFIGURATIONS,
    RETRIEVAL_GRIDS,
    RETRIEVAL_PROPOSED_CONFIGURATIONS,
    Config,
    CTRSweep,
    RetrievalSweep,
    Trained,
    add_headline,
    config_key,
    configurations,
    load_progress,
    required_configurations,
    run_sweep,
    save_progress,
)

from leanrec.data.interactions import IdVocabulary, Interactions
from leanrec.data.sequential import NegativeSampling, NextItemSplit
from leanrec.runner.rundir import RunDirectory
from leanrec.search.architecture.baselines import NEXT_ITEM_METHODS, NextItemCell
from leanrec.search.architecture.config import RetrievalExperiment, RetrievalSearchConfig

# --------------------------------------------------------------------------- grids


def test_required_count_is_at_least_six_and_at_least_the_proposed_methods() -> None:
    assert required_configurations(2) == 6
    assert required_configurations(14) == 14


@pytest.mark.parametrize("model", ["sasrec", "gru4rec"])
def test_next_item_grids_are_nine_configurations_from_the_beauty_tables_setting(
    model: str,
) -> None:
    grid = configurations(RETRIEVAL_GRIDS[model])
    assert len(grid) == 9 >= required_configurations(RETRIEVAL_PROPOSED_CONFIGURATIONS)
    assert len({config_key(c) for c in grid}) == 9
    default = RetrievalSweep(experiment=RetrievalExperiment(dataset="unused")).default(model)
    # the Beauty table trains both at lr 1e-3, SASRec with dropout 0.5 and GRU4Rec with 0.25
    assert default == {"learning_rate": 1e-3, "dropout": {"sasrec": 0.5, "gru4rec": 0.25}[model]}
    assert config_key(default) in {config_key(c) for c in grid}
    dropouts = RETRIEVAL_GRIDS[model]["dropout"]
    assert min(dropouts) < default["dropout"] < max(dropouts)
    assert min(RETRIEVAL_GRIDS[model]["learning_rate"]) == default["learning_rate"]


def test_the_ctr_grid_meets_ameirs_fourteen() -> None:
    assert (
        len(configurations(CTR_GRID)) == 16 >= required_configurations(CTR_PROPOSED_CONFIGURATIONS)
    )


# --------------------------------------------------------------------------- the loop, faked


@dataclass
class FakeSweep:
    """A protocol whose figures are set by hand: validation favours ``valid_best``, test favours
    another configuration; it records every call."""

    valid_best: str
    test_best: str
    fail_after: int | None = None
    """Raise on this many-th training (a killed run)."""
    fits: list[tuple[str, int]] = field(default_factory=list)
    tests: list[tuple[str, int]] = field(default_factory=list)
    name: str = "fake"
    dataset: str = "fake"
    selection_metric: str = "valid_score"
    report_metrics: tuple[str, ...] = ("test_score",)
    headline_fields: tuple[str, ...] = ()
    proposed_configurations: int = 2
    epochs: int = 1
    patience: int = 1

    def grid(self, model: str) -> dict[str, tuple[Any, ...]]:
        return {"learning_rate": (1, 2, 3), "dropout": (0.0, 0.5)}

    def default(self, model: str) -> Config:
        return {"learning_rate": 2, "dropout": 0.0}

    def fit(self, model: str, config: Config, seed: int, workdir: Path) -> Trained:
        if self.fail_after is not None and len(self.fits) == self.fail_after:
            raise KeyboardInterrupt
        key = config_key(config)
        self.fits.append((key, seed))
        score = 0.9 if key == self.valid_best else 0.5 + 0.01 * config["learning_rate"]
        return Trained(key, {"valid_score": score + seed / 1000}, 3, 1.0)

    def test(self, model: str, trained: Trained, seed: int) -> dict[str, float]:
        self.tests.append((trained.model, seed))
        return {"test_score": 0.99 if trained.model == self.test_best else 0.1 + seed / 100}


X = "dropout=0.5,learning_rate=1"
Y = "dropout=0.0,learning_rate=3"


def _quiet(message: str) -> None:
    pass


def test_the_choice_is_made_on_validation_and_only_it_is_tested(tmp_path: Path) -> None:
    fake = FakeSweep(valid_best=X, test_best=Y)
    results = run_sweep(fake, "m", tmp_path, [0, 1, 2], log=_quiet)
    assert results is not None
    assert results["chosen"] == X
    # every configuration on seed 0 first, then the chosen one on every seed
    assert [seed for _, seed in fake.fits[:6]] == [0] * 6
    assert fake.fits[6:] == [(X, 0), (X, 1), (X, 2)]
    assert fake.tests == [(X, 0), (X, 1), (X, 2)], "test is read for the choice only"
    assert results["test_score_mean"] == pytest.approx(np.mean([0.1, 0.11, 0.12]))
    assert json.loads(results["test_score_by_seed"]) == pytest.approx(
        {"0": 0.1, "1": 0.11, "2": 0.12}
    )
    assert results["baseline_configurations"] == 6
    assert results["proposed_configurations"] == 2
    assert results["required_configurations"] == 6
    assert json.loads(results["grid"]) == {"learning_rate": [1, 2, 3], "dropout": [0.0, 0.5]}
    # every configuration's validation figure is recorded
    sweep = {k: v for k, v in results.items() if k.startswith("sweep_valid_score[")}
    assert len(sweep) == 6 and sweep[f"sweep_valid_score[{X}]"] == 0.9
    assert results["default_valid_score"] == pytest.approx(0.52)


def test_a_killed_run_resumes_without_repeating_finished_trainings(tmp_path: Path) -> None:
    killed = FakeSweep(valid_best=X, test_best=Y, fail_after=4)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(killed, "m", tmp_path, [0, 1], log=_quiet)
    resumed = FakeSweep(valid_best=X, test_best=Y, fail_after=3)  # dies on its first seed row
    with pytest.raises(KeyboardInterrupt):
        run_sweep(resumed, "m", tmp_path, [0, 1], log=_quiet)
    last = FakeSweep(valid_best=X, test_best=Y)
    results = run_sweep(last, "m", tmp_path, [0, 1], log=_quiet)
    assert len(killed.fits) == 4 and len(resumed.fits) == 3
    assert {k for k, _ in killed.fits} | {k for k, _ in resumed.fits[:2]} == {
        config_key(c) for c in configurations(last.grid("m"))
    }
    assert resumed.fits[2] == (X, 0)
    assert last.fits == [(X, 1)], "only the missing seed row is trained"
    fresh = run_sweep(FakeSweep(X, Y), "m", tmp_path / "fresh", [0, 1], log=_quiet)
    assert results is not None and fresh is not None
    assert {k: v for k, v in results.items() if "seconds" not in k} == {
        k: v for k, v in fresh.items() if "seconds" not in k
    }


def test_lanes_partition_the_grid_and_the_seeds(tmp_path: Path) -> None:
    lanes = [FakeSweep(valid_best=X, test_best=Y) for _ in range(2)]
    assert run_sweep(lanes[0], "m", tmp_path, [0, 1, 2], lane=(0, 2), log=_quiet) is None
    first_pass = len(lanes[0].fits)
    done = run_sweep(lanes[1], "m", tmp_path, [0, 1, 2], lane=(1, 2), log=_quiet)
    assert done is None  # lane 0's seed rows are still missing
    assert run_sweep(lanes[0], "m", tmp_path, [0, 1, 2], lane=(0, 2), log=_quiet) is not None
    grid = [config_key(c) for c in configurations(lanes[0].grid("m"))]
    swept = [[k for k, _ in lane.fits[:3]] for lane in lanes]
    assert first_pass == 3 and swept == [grid[0::2], grid[1::2]]
    assert [s for _, s in lanes[0].fits[3:]] == [0, 2] and [s for _, s in lanes[1].fits[3:]] == [1]
    assert sorted(tmp_path.glob("*.json")) == [
        tmp_path / f"{stem}-lane{i}.json" for stem in ("final", "sweep") for i in (0, 1)
    ]
    merged = run_sweep(FakeSweep(X, Y), "m", tmp_path, [0, 1, 2], log=_quiet)
    single = run_sweep(FakeSweep(X, Y), "m", tmp_path / "one", [0, 1, 2], log=_quiet)
    assert merged == single


def test_a_sweep_continues_from_its_progress_file_in_a_new_directory(tmp_path: Path) -> None:
    progress = tmp_path / "progress.json"
    first_dir, second_dir, third_dir = (tmp_path / name for name in ("a", "b", "c"))
    load_progress(first_dir, progress)  # no file yet: nothing to carry
    assert not first_dir.exists()
    save = lambda: save_progress(first_dir, progress)  # noqa: E731
    lane0 = FakeSweep(valid_best=X, test_best=Y)
    assert run_sweep(lane0, "m", first_dir, [0, 1, 2], (0, 2), _quiet, on_progress=save) is None
    lane1 = FakeSweep(valid_best=X, test_best=Y)  # its half of the grid, then seed 1's row
    assert run_sweep(lane1, "m", first_dir, [0, 1, 2], (1, 2), _quiet, on_progress=save) is None
    killed = FakeSweep(valid_best=X, test_best=Y, fail_after=1)  # seed 0's row, then killed
    with pytest.raises(KeyboardInterrupt):
        run_sweep(killed, "m", first_dir, [0, 1, 2], (0, 2), _quiet, on_progress=save)
    state = json.loads(progress.read_text())
    assert len(state["sweep"]) == 6
    assert state["final"]["chosen"] == X and sorted(state["final"]["rows"]) == ["0", "1"]
    load_progress(second_dir, progress)  # a new session: only the progress file is left
    resumed = FakeSweep(valid_best=X, test_best=Y)
    results = run_sweep(resumed, "m", second_dir, [0, 1, 2], log=_quiet)
    assert resumed.fits == [(X, 2)], "only the missing seed row is trained"
    fresh = run_sweep(FakeSweep(X, Y), "m", third_dir, [0, 1, 2], log=_quiet)
    assert results is not None and fresh is not None
    assert {k: v for k, v in results.items() if "seconds" not in k} == {
        k: v for k, v in fresh.items() if "seconds" not in k
    }


# --------------------------------------------------------------------------- next item, real


def _cycle_split(negatives: NegativeSampling) -> NextItemSplit:
    """Every user walks one fixed cycle over 40 items, 6-15 steps from a random start."""
    rng = np.random.default_rng(0)
    n_users, n_items = 150, 40
    cycle = rng.permutation(n_items)
    lengths = rng.integers(6, 16, size=n_users)
    starts = rng.integers(0, n_items, size=n_users)
    users = np.repeat(np.arange(n_users), lengths)
    offsets = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    items = cycle[(np.repeat(starts, lengths) + offsets) % n_items]
    data = Interactions.from_raw(
        users, items, timestamps=offsets, item_vocab=IdVocabulary.identity(n_items, name="item")
    )
    return NextItemSplit.from_interactions(
        data, max_length=8, n_negatives=20, negative_sampling=negatives, seed=0
    )


@pytest.fixture(scope="module")
def tiny() -> RetrievalSweep:
    splits = (_cycle_split("uniform"), _cycle_split("popularity"))
    experiment = RetrievalExperiment(
        dataset="tiny-cycle",
        max_length=8,
        baseline_epochs=2,
        config=RetrievalSearchConfig(embedding_dim=8, batch_size=64, eval_every=1, num_threads=1),
    )
    grids = {"sasrec": {"learning_rate": (3e-3, 3e-2), "dropout": (0.0, 0.2, 0.4)}}
    return RetrievalSweep(experiment=experiment, grids=grids, splits=lambda seed: splits)


def test_the_swept_dropout_reaches_the_encoder(tiny: RetrievalSweep, tmp_path: Path) -> None:
    method = dataclasses.replace(NEXT_ITEM_METHODS["sasrec"], dropout=0.3)
    split, _ = tiny._splits(0)
    experiment = dataclasses.replace(tiny.experiment, baseline_epochs=1)
    run = RunDirectory(tmp_path, log=None)
    model = method.fit(NextItemCell(experiment, split, experiment.config, run, run.log)).model
    assert model.encoder.config.dropout == 0.3
    assert NEXT_ITEM_METHODS["sasrec"].dropout is None, "the table's method is untouched"


def test_next_item_sweep_end_to_end(tiny: RetrievalSweep, tmp_path: Path) -> None:
    results = run_sweep(tiny, "sasrec", tmp_path, [0, 1], log=_quiet)
    assert results is not None
    sweep = {
        key[len("sweep_valid_ndcg@5[") : -1]: value
        for key, value in results.items()
        if key.startswith("sweep_valid_ndcg@5[")
    }
    assert len(sweep) == results["baseline_configurations"] == 6
    assert results["chosen"] == max(sweep, key=lambda k: sweep[k])
    assert len(set(sweep.values())) > 1, "learning rate and dropout change the training"
    assert {f"sweep_valid_hit@5[{k}]" for k in sweep} <= set(results)
    assert results["proposed_configurations"] == 2 and results["required_configurations"] == 6
    assert results["selection_metric"] == "valid_ndcg@5"
    # the chosen configuration retrained on seed 0 repeats its sweep training exactly
    rows = json.loads((tmp_path / "final.json").read_text())["rows"]
    assert rows["0"]["valid_ndcg@5"] == sweep[results["chosen"]]
    for name in ("test_hit@5", "test_ndcg@5", "test_other_ndcg@5", "test_full_hit@10"):
        assert 0.0 <= results[f"{name}_mean"] <= 1.0
    assert set(json.loads(results["test_ndcg@5_by_seed"])) == {"0", "1"}
    assert not any((tmp_path / "cells").glob("*/*.pt")), "checkpoints go once a row is stored"


def test_the_command_line_sets_up_the_beauty_tables_training(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import benchmarks.paper.ameir_baseline_sweep as script

    seen: dict[str, Any] = {}

    def fake_run(
        protocol: Any, model: str, out: Path, seeds: list[int], lane: Any, log: Any,
        on_progress: Any = None,
    ) -> None:  # fmt: skip
        seen.update(protocol=protocol, model=model, seeds=seeds, lane=lane, progress=on_progress)

    monkeypatch.setattr(script, "run_sweep", fake_run)
    argv = ["x", "--protocol", "retrieval", "--model", "gru4rec", "--out", str(tmp_path)]
    monkeypatch.setattr("sys.argv", [*argv, "--lane", "1", "2"])
    script.main()
    protocol = seen["protocol"]
    assert isinstance(protocol, RetrievalSweep)
    assert (seen["model"], seen["seeds"], seen["lane"]) == ("gru4rec", [0, 1, 2], [1, 2])
    # `leanrec experiment architecture --dataset beauty --baseline_epochs 40 --num_threads 1`
    assert protocol.experiment.dataset == "beauty" and protocol.experiment.baseline_epochs == 40
    assert protocol.experiment.config.num_threads == 1
    assert protocol.experiment.config == RetrievalSearchConfig(num_threads=1)
    assert protocol.experiment.max_length == 50
    assert seen["progress"] is None
    # with --progress the file is written when the run ends, even with nothing trained
    progress = tmp_path / "progress.json"
    monkeypatch.setattr("sys.argv", [*argv, "--progress", str(progress)])
    script.main()
    assert callable(seen["progress"]) and json.loads(progress.read_text()) == {"sweep": {}}


class _KilledError(Exception):
    pass


def test_ctr_training_killed_after_an_epoch_resumes_to_the_uninterrupted_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import types

    import torch

    from leanrec.train import pointwise
    from tests.models.ctr.synthetic import make_samples

    train, _ = make_samples(3000, seed=1)
    valid, _ = make_samples(1000, seed=2)
    sweep = CTRSweep(epochs=3, patience=3)
    sweep._split = types.SimpleNamespace(feature_map=train.feature_map, train=train, valid=valid)
    config = {"learning_rate": 3e-3, "batch_size": 512, "dropout": 0.3}  # dropout draws RNG
    whole = sweep.fit("deepfm", config, 0, tmp_path / "whole")
    assert not (tmp_path / "whole").exists()  # removed once trained

    trained_epochs: list[int] = []
    kill_at = [1]

    class Watched(pointwise.CTRTrainer):
        """Records every epoch it trains; raises after the epoch in ``kill_at``."""

        def __init__(self, config: Any, on_epoch: Any = None, checkpoint_path: Any = None):
            def watch(epoch: int, record: dict) -> None:
                trained_epochs.append(epoch)
                if epoch in kill_at:
                    raise _KilledError  # after this epoch's checkpoint is written

            super().__init__(config, watch, checkpoint_path)

    monkeypatch.setattr(pointwise, "CTRTrainer", Watched)
    with pytest.raises(_KilledError):
        sweep.fit("deepfm", config, 0, tmp_path / "killed")
    assert (tmp_path / "killed" / "train_state.pt").is_file()
    # another patience would continue a training that is not this one's
    with pytest.raises(SystemExit, match=r"other trainer settings \(patience\)"):
        CTRSweep(epochs=3, patience=2, _split=sweep._split).fit(
            "deepfm", config, 0, tmp_path / "killed"
        )
    trained_epochs.clear()
    kill_at.clear()
    resumed = sweep.fit("deepfm", config, 0, tmp_path / "killed")
    assert trained_epochs == [2, 3]  # epoch 1 came from the checkpoint
    assert resumed.valid == whole.valid and resumed.best_epoch == whole.best_epoch
    for (name, mine), theirs in zip(
        resumed.model.state_dict().items(), whole.model.state_dict().values(), strict=True
    ):
        assert torch.equal(mine, theirs), name


def test_headline_figures_are_the_models_and_a_headline_without_it_is_refused(
    tmp_path: Path,
) -> None:
    headline = tmp_path / "ameir_table.json"
    headline.write_text(
        json.dumps(
            {
                "deepfm_test_auc_mean": 0.8065,
                "deepfm_test_auc_std": 0.001,
                "deepfm_valid_auc_mean": 0.81,
                "ameir_test_auc_mean": 0.8108,
            }
        )
    )
    results: dict[str, Any] = {}
    add_headline(results, CTRSweep(), "deepfm", headline)
    assert results["default_test_auc_mean"] == 0.8065
    assert results["ameir_test_auc_mean"] == 0.8108
    with pytest.raises(SystemExit, match="no xdeepfm rows"):
        add_headline({}, CTRSweep(), "xdeepfm", headline)
