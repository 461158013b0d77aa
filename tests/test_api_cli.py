"""The Python API and the ``leanrec`` command end to end on the embedded synthetic data."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from leanrec.api import TrainConfig, load_model, refit, train
from leanrec.cli import _parse_options, build_train_config, main, make_parser
from leanrec.train import TrainerConfig

FAST = TrainerConfig(max_epochs=3, learning_rate=0.01, batch_size=4096)


def test_train_returns_model_and_metrics(tmp_path: Path) -> None:
    run = train(TrainConfig(dataset="synthetic", model="mf", trainer=FAST, run_dir=str(tmp_path)))
    assert set(run.test_metrics) >= {"recall@10", "ndcg@20"}
    assert run.train_result.best_epoch >= 1
    # model selection happened on validation: best epoch maximises the validation metric
    values = [r["valid_ndcg@20"] for r in run.train_result.history]
    assert run.train_result.best_epoch == int(np.argmax(values)) + 1

    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["test_recall@20"] == pytest.approx(run.test_metrics["recall@20"])
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["model_config"]["embedding_dim"] == 64
    assert config["trainer"]["valid_metric"] == "ndcg@20"

    state = torch.load(tmp_path / "model.pt", weights_only=True)
    assert state["model"] == "mf"
    model, users, items = load_model(tmp_path / "model.pt")
    assert users is not None and items is not None
    got, _ = model.recommend([0, 1, 2], k=5)
    expected, _ = run.recommend([0, 1, 2], k=5)
    assert np.array_equal(got.numpy(), expected)


def test_refit_trains_the_selected_model_on_train_and_valid(tmp_path: Path) -> None:
    config = TrainConfig(
        dataset="synthetic",
        model="lightgcn",
        model_options={"embedding_dim": 16, "n_layers": 1},
        trainer=FAST,
        seed=3,
    )
    selected = train(config)
    refitted = train(
        config, trainer=dataclasses.replace(FAST, refit_epochs=2), run_dir=str(tmp_path)
    )

    # the selection is the same run; the refit then moved the weights
    assert refitted.train_result.best_epoch == selected.train_result.best_epoch
    assert refitted.valid_metrics == pytest.approx(selected.valid_metrics)
    assert refitted.refit_result is not None and refitted.refit_result.epochs_run == 2
    assert not torch.equal(refitted.model.user_embedding.all(), selected.model.user_embedding.all())
    # the graph and the seen items are now train + valid
    split = refitted.split
    union = split.train.concat(split.valid).to_csr()
    union.data[:] = 1
    assert refitted.model.seen_matrix().nnz == union.nnz
    assert refitted.model.require_graph().matrix.nnz == 2 * union.nnz
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["refit_epochs"] == 2 and metrics["refit_seconds"] > 0
    with pytest.raises(ValueError, match="at least one epoch"):
        refit(selected.model, split, FAST, selected.train_result.history, 1)


def test_recommend_with_raw_ids_excludes_training(tmp_path: Path) -> None:
    run = train(dataset="synthetic", model="mf", trainer=FAST)
    train_csr = run.split.train.to_csr()
    raw_user = run.split.train.user_vocab.to_raw([4])[0]
    items, _ = run.recommend([raw_user], k=10, raw_ids=True)
    index = run.split.train.item_vocab.to_index(items[0])
    assert not set(index) & set(train_csr[4].indices)


def test_options_are_parsed() -> None:
    assert _parse_options(["--lr", "0.01", "--n-layers", "2", "--layer_sizes", "[8,8]"]) == {
        "lr": 0.01,
        "n_layers": 2,
        "layer_sizes": [8, 8],
    }


def test_cli_train_writes_run_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_dir = tmp_path / "run"
    code = main(
        [
            "train", "--dataset", "synthetic", "--model", "lightgcn", "--run-dir", str(run_dir),
            "--epochs", "2", "--lr", "0.01", "--n_layers", "2", "--batch_size", "4096",
            "--min_delta", "0.001",
        ]
    )  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    assert "recall@20" in out and "ndcg@10" in out
    resolved = json.loads((run_dir / "config.json").read_text())
    assert resolved["model_config"]["n_layers"] == 2
    assert resolved["trainer"]["min_delta"] == 0.001
    assert (run_dir / "metrics.json").exists()
    assert not (run_dir / "train_state.pt").exists()

    code = main(
        ["recommend", "--model", str(run_dir / "model.pt"), "--users", "0", "1", "--k", "3"]
    )
    assert code == 0
    recs = json.loads(capsys.readouterr().out)
    assert len(recs) == 2 and len(recs[0]["items"]) == 3


def test_cli_rejects_unknown_model_option(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["train", "--model", "mf", "--n_layrs", "2", "--epochs", "1"])
    assert code == 2
    assert "n_layrs" in capsys.readouterr().err


def test_cli_missing_dataset_names_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["train", "--dataset", "gowalla", "--data-dir", str(tmp_path), "--epochs", "1"])
    assert code == 2
    err = capsys.readouterr().err
    assert "gowalla" in err and str(tmp_path) in err


def test_cli_datasets_reports_the_files_present(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    for folder, files in {
        "movielens-1m-ratings": ["ratings.dat"],  # ml-1m: complete
        "gowalla-lightgcn": ["train.txt", "test.txt"],  # gowalla: complete
        "yelp2018-lightgcn": ["train.txt"],  # yelp2018: test.txt missing
        "beauty-bert4rec": [],  # beauty: an empty folder
    }.items():
        (data / folder).mkdir(parents=True)
        for name in files:
            (data / folder / name).write_text("0 1\n")
    out = subprocess.run(
        [sys.executable, "-m", "leanrec.cli", "datasets", "--data-dir", str(data), "--json"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    report = json.loads(out)
    assert report["data_dir"] == str(data)
    rows = {row["name"]: row for row in report["datasets"]}
    assert {name for name, row in rows.items() if row["present"]} == {"ml-1m", "gowalla"}
    assert rows["ml-1m"]["missing"] == [] and rows["gowalla"]["missing"] == []
    assert rows["yelp2018"]["missing"] == ["test.txt"]
    assert rows["amazon-book"]["missing"] == ["train.txt", "test.txt"]
    assert rows["beauty"]["missing"] == ["beauty.txt"]
    assert rows["gowalla"]["folder"] == str(data / "gowalla-lightgcn")

    assert main(["datasets", "--data-dir", str(data)]) == 0
    table = {line.split()[0]: line.split()[1:] for line in capsys.readouterr().out.splitlines()[2:]}
    assert table["synthetic"] == ["yes", "(generated)"]
    assert table["ml-1m"] == ["yes", "movielens-1m-ratings"]
    assert table["yelp2018"] == ["no", "yelp2018-lightgcn", "test.txt"]
    assert table["amazon-book"] == ["no", "amazon-book-lightgcn", "train.txt,", "test.txt"]
    # a dataset built from another is listed, present when its source is
    assert table["ml-1m-ctr"] == ["no", "(built", "from", "ml-1m-partial)"]
    assert {e["name"]: e["source"] for e in report["built_datasets"]} == {
        "ml-1m-ctr": "ml-1m-partial"
    }
    assert report["data_dir_exists"]
    assert main(["datasets", "--data-dir", str(data / "absent")]) == 0
    assert capsys.readouterr().out.splitlines()[0].endswith("absent (does not exist)")


def test_cli_resume_continues_killed_run(tmp_path: Path) -> None:
    """A run killed after two epochs resumes from its train_state.pt instead of starting over."""
    from leanrec.data.presets import prepare_split
    from leanrec.models import build_model
    from leanrec.train import BPRTrainer

    run_dir = tmp_path / "run"
    state_path = run_dir / "train_state.pt"
    split, _ = prepare_split("synthetic", None, None, seed=2024)
    model = build_model("mf", split.train, None, seed=2024)
    killed = TrainerConfig(max_epochs=2, learning_rate=0.01, batch_size=4096, seed=2024)
    BPRTrainer(model, split.train, split.valid, killed, checkpoint_path=state_path).fit()
    saved = torch.load(state_path, weights_only=True)["history"]

    code = main(
        ["train", "--dataset", "synthetic", "--model", "mf", "--run-dir", str(run_dir), "--resume",
         "--epochs", "3", "--lr", "0.01", "--batch_size", "4096"]
    )  # fmt: skip
    assert code == 0
    history = json.loads((run_dir / "history.json").read_text())
    assert [r["epoch"] for r in history] == [1, 2, 3]
    # epochs 1-2 were carried over from the state, not trained again
    assert history[0]["train_seconds"] == saved[0]["train_seconds"]
    assert history[1]["loss"] == saved[1]["loss"]
    assert not state_path.exists()  # a finished run cleans its state up


def test_cli_resume_needs_run_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--resume", "--epochs", "1"]) == 2
    assert "--run-dir" in capsys.readouterr().err
    # a directory without a killed run's state: said, not silently a new run
    fresh = tmp_path / "fresh"
    assert main(["train", "--resume", "--run-dir", str(fresh), "--epochs", "1"]) == 2
    err = capsys.readouterr().err
    assert f"resume (--resume): no {fresh / 'train_state.pt'} to continue from" in err
    assert not fresh.exists()


def test_a_training_resumes_only_with_the_settings_it_was_started_with(tmp_path: Path) -> None:
    from leanrec.api import TrainConfig, train
    from leanrec.api.training import start_training_dir
    from leanrec.train.bpr import TrainerConfig

    run_dir = tmp_path / "run"
    started = TrainConfig(dataset="synthetic", model="mf", seed=3, run_dir=str(run_dir),
                          trainer=TrainerConfig(max_epochs=2, batch_size=4096))  # fmt: skip

    def killed(epoch: int, record: dict[str, float]) -> None:
        if epoch == 1:
            raise KeyboardInterrupt  # after epoch 1's checkpoint

    with pytest.raises(KeyboardInterrupt):
        train(started, on_epoch=killed)
    assert (run_dir / "train_state.pt").exists()  # the settings were written at the start:
    settings = (run_dir / "config.json").read_text()
    assert json.loads(settings)["seed"] == 3
    # another seed draws another split: its test pairs would have been trained on
    other = dataclasses.replace(started, seed=9, resume=True)
    with pytest.raises(ValueError, match=r"other settings: seed 3 -> 9\. Resume it"):
        train(other)
    lr = dataclasses.replace(started.trainer, learning_rate=0.05)
    with pytest.raises(ValueError, match=r"trainer\.learning_rate 0\.001 -> 0\.05"):
        train(dataclasses.replace(started, trainer=lr, resume=True))
    assert (run_dir / "config.json").read_text() == settings  # nothing was written
    # threads and a time budget may change: the killed run continues to its end
    threads = dataclasses.replace(started.trainer, num_threads=2, max_seconds=600.0)
    resumed = train(dataclasses.replace(started, trainer=threads, resume=True))
    assert [r["epoch"] for r in resumed.train_result.history] == [1, 2]
    assert not (run_dir / "train_state.pt").exists()
    # a fresh start in a used directory removes the old state: a resume can only continue it
    (run_dir / "train_state.pt").write_bytes(b"left by an older run")
    fresh = dataclasses.replace(started, seed=4)
    assert start_training_dir(fresh, TrainConfig(), run_dir, resume=False).name == "train_state.pt"
    assert not (run_dir / "train_state.pt").exists()
    assert json.loads((run_dir / "config.json").read_text())["seed"] == 4
    with pytest.raises(ValueError, match="give the run directory"):
        train(dataclasses.replace(started, run_dir=None, resume=True))
    with pytest.raises(TypeError, match="train takes a TrainConfig"):
        train("synthetic")  # type: ignore[arg-type]


def test_experiment_seed_reaches_the_search_and_seeds_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import leanrec.search.embedding_size as embedding_size
    from leanrec.runner.rundir import RunDirectory
    from leanrec.search.base import ExperimentResult

    seen = []

    def fake_run(exp, log):  # type: ignore[no-untyped-def]
        seen.append(exp)
        run = RunDirectory(exp.out_dir, log=None)
        return ExperimentResult("embedding_size", run, [{"method": "su"}], {})

    monkeypatch.setattr(embedding_size, "run_experiment", fake_run)
    out = tmp_path / "run"
    out.mkdir()
    base = ["experiment", "embedding-size", "--dataset", "synthetic", "--out", str(out)]
    # --seed is no abbreviation of --seeds: it is the search's seed
    assert main([*base, "--seed", "2025", "--screen_masks", "7"]) == 0
    assert seen[0].search.seed == 2025 and seen[0].search.screen_masks == 7
    assert seen[0].split_seed is None  # the split follows the search seed
    assert main([*base, "--seed", "2026", "--split_seed", "2024"]) == 0
    assert seen[1].search.seed == 2026 and seen[1].split_seed == 2024
    assert main([*base, "--seeds", "1", "2"]) == 2
    assert "give --seed N, not --seeds" in capsys.readouterr().err
    assert len(seen) == 2


# ------------------------------------------------------------- options reach the right configs
def _capture_experiment(
    monkeypatch: pytest.MonkeyPatch, module: Any, function: str, result: dict[str, Any]
) -> list[Any]:
    """Replace ``module.function`` (an experiment runner) by one that records its experiment."""
    seen: list[Any] = []

    def fake_run(exp, log, **_):  # type: ignore[no-untyped-def]
        seen.append(exp)
        Path(exp.out_dir).mkdir(parents=True, exist_ok=True)
        (Path(exp.out_dir) / "table.md").write_text("table")
        return result

    monkeypatch.setattr(module, function, fake_run)
    return seen


def test_train_options_go_to_the_trainer_first_then_the_model() -> None:
    args, extra = make_parser().parse_known_args(
        ["train", "--model", "mf", "--seed", "7", "--epochs", "4", "--lr", "1", "--reg", "0",
         "--embedding_dim", "8.0", "--valid_metric", "recall@20"]
    )  # fmt: skip
    config = build_train_config(args, extra)
    assert config.trainer == TrainerConfig(
        max_epochs=4, learning_rate=1.0, l2=0.0, valid_metric="recall@20", seed=7
    )
    assert config.model_options == {"embedding_dim": 8}
    assert type(config.model_options["embedding_dim"]) is int


def test_embedding_size_options_reach_nested_configs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import leanrec.search.embedding_size as embedding_size
    from leanrec.runner.rundir import RunDirectory
    from leanrec.search.base import ExperimentResult
    from leanrec.search.embedding_size import CIESSConfig
    from leanrec.search.embedding_size.baselines import PEPConfig

    done = ExperimentResult("embedding_size", RunDirectory(tmp_path, log=None), [{}], {})
    seen = _capture_experiment(monkeypatch, embedding_size, "run_experiment", done)  # type: ignore[arg-type]
    base = ["experiment", "embedding-size", "--dataset", "synthetic", "--out", str(tmp_path)]
    code = main(
        [*base, "--pretrain-epochs", "5", "--pretrain-lr", "0.02", "--retrain-patience", "2",
         "--td3-hidden", "128", "--pep-max_epochs", "3", "--pep-retrain_from", "init",
         "--target_sparsities", "0.9", "--eval_ks", "[5,20]", "--noise", "ou",
         "--retrain_from_warm_start", "false", "--split_seed", "11", "--no-random-walk",
         "--pruning-base", "ordinary"]
    )  # fmt: skip
    assert code == 0
    exp = seen[0]
    default = CIESSConfig()
    assert exp.search.pretrain == dataclasses.replace(
        default.pretrain, max_epochs=5, learning_rate=0.02
    )
    assert exp.search.retrain == dataclasses.replace(default.retrain, patience=2)
    assert exp.search.td3 == dataclasses.replace(default.td3, hidden=128)
    assert exp.pep == PEPConfig(max_epochs=3, retrain_from="init")
    assert exp.search == dataclasses.replace(
        default,
        pretrain=exp.search.pretrain,
        retrain=exp.search.retrain,
        td3=exp.search.td3,
        target_sparsities=(0.9,),
        eval_ks=(5, 20),
        noise="ou",
        retrain_from_warm_start=False,
        random_walk=False,
    )
    assert exp.split_seed == 11 and exp.pruning_base == "ordinary"

    assert main([*base, "--noise", "brown"]) == 2
    assert "noise 'brown': expected one of 'gaussian', 'ou', 'uniform'" in capsys.readouterr().err
    assert main([*base, "--pep-retrain_from", "best"]) == 2
    assert "pep_retrain_from 'best': expected one of 'trained', 'init'" in capsys.readouterr().err
    assert main([*base, "--pretrain-max_epoch", "5"]) == 2
    assert "did you mean 'pretrain_max_epochs'" in capsys.readouterr().err
    # the experiment takes only --split_seed and --pep-… from options; its other fields are flags
    assert main([*base, "--out_dir", "elsewhere"]) == 2
    assert "unknown option 'out_dir'" in capsys.readouterr().err
    assert len(seen) == 1


def test_architecture_experiment_options_route_to_experiment_then_search(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import leanrec.search.architecture.experiment as architecture
    from leanrec.runner.rundir import RunDirectory
    from leanrec.search.base import ExperimentResult

    summary = {"methods": {"ameir": {}}}
    done = ExperimentResult("architecture", RunDirectory(tmp_path, log=None), [], summary)
    seen = _capture_experiment(monkeypatch, architecture, "run_experiment", done)  # type: ignore[arg-type]
    base = ["experiment", "architecture", "--dataset", "ml-1m", "--out", str(tmp_path)]
    code = main(
        [*base, "--seeds", "4", "--baseline_epochs", "2", "--random_budget", "samples",
         "--predefined_mlp", "[64,32]", "--seed", "3", "--lr", "0.01", "--readout", "mean"]
    )  # fmt: skip
    assert code == 0
    exp = seen[0]
    assert (exp.dataset, exp.seeds, exp.baseline_epochs, exp.random_budget) == (
        "ml-1m-ctr", (4,), 2, "samples"
    )  # fmt: skip
    assert exp.config.predefined_mlp == (64, 32) and exp.config.readout == ("mean",)
    assert exp.config.seed == 3 and exp.config.learning_rate == 0.01
    assert main([*base, "--random_budget", "flops"]) == 2
    assert "random_budget 'flops': expected one of 'seconds', 'samples'" in capsys.readouterr().err
    assert main([*base, "--executor", "threads"]) == 2
    assert "executor 'threads'" in capsys.readouterr().err


def test_retrieval_experiment_options_route_to_experiment_then_search(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import leanrec.search.architecture.experiment as architecture
    from leanrec.runner.rundir import RunDirectory
    from leanrec.search.base import ExperimentResult

    summary = {"methods": {"ameir": {}}}
    done = ExperimentResult("architecture", RunDirectory(tmp_path, log=None), [], summary)
    seen = _capture_experiment(monkeypatch, architecture, "run_experiment", done)  # type: ignore[arg-type]
    base = ["experiment", "architecture", "--dataset", "beauty", "--out", str(tmp_path)]
    code = main(
        [*base, "--negative_sampling", "popularity", "--max_length", "20", "--n_blocks", "1",
         "--baseline_seconds", "30", "--retrain_seconds", "none"]
    )  # fmt: skip
    assert code == 0
    exp = seen[0]
    assert (exp.negative_sampling, exp.max_length, exp.baseline_seconds) == ("popularity", 20, 30.0)
    assert exp.config.n_blocks == 1 and exp.config.retrain_seconds is None
    assert main([*base, "--negative_sampling", "hard"]) == 2
    assert "negative_sampling 'hard': expected one of 'popularity', 'uniform'" in (
        capsys.readouterr().err
    )


def test_retrieval_preset_turns_one_addition_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import leanrec.search.architecture.experiment as architecture
    from leanrec.runner.rundir import RunDirectory
    from leanrec.search.base import ExperimentResult

    summary = {"methods": {"ameir": {}}}
    done = ExperimentResult("architecture", RunDirectory(tmp_path, log=None), [], summary)
    seen = _capture_experiment(monkeypatch, architecture, "run_experiment", done)  # type: ignore[arg-type]
    base = ["experiment", "architecture", "--dataset", "beauty", "--out", str(tmp_path)]
    assert main([*base, "--preset", "leanrec", "--without", "positions"]) == 0
    config = seen[0].config
    assert (config.positions, config.final_norm, config.input_dropout) == (False, True, 0.3)
    assert main([*base, "--preset", "paper"]) == 0
    config = seen[1].config
    assert (config.positions, config.final_norm, config.input_dropout) == (False, False, 0.0)
    assert config.n_blocks == 3


def test_without_help_names_every_addition_of_every_policy() -> None:
    from leanrec.search.architecture import config as architecture
    from leanrec.search.embedding_size import config as embedding_size
    from leanrec.search.sketch import config as sketch

    parser = make_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    experiment = sub.choices["experiment"]  # type: ignore[index]
    help_text = " ".join(experiment.format_help().split())
    for additions in (
        embedding_size.LEANREC_ADDITIONS,
        architecture.LEANREC_ADDITIONS,
        architecture.RETRIEVAL_ADDITIONS,
        sketch.LEANREC_ADDITIONS,
    ):
        for name in additions:
            assert name in help_text, name


def test_sketch_experiment_options_reach_its_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import leanrec.search.sketch.experiment as sketch
    from leanrec.runner.rundir import RunDirectory
    from leanrec.search.base import ExperimentResult

    done = ExperimentResult("sketch", RunDirectory(tmp_path, log=None), [{}], {})
    seen = _capture_experiment(monkeypatch, sketch, "run_experiment", done)  # type: ignore[arg-type]
    code = main(
        ["experiment", "sketch", "--dataset", "ml-1m", "--out", str(tmp_path),
         "--rating_scale", "[1,5]", "--epochs", "2", "--lr", "0.01", "--queue_size", "1"]
    )  # fmt: skip
    assert code == 0
    config = seen[0].config
    # SketchConfig has an ``epochs`` field: the alias to max_epochs does not apply
    assert (config.rating_scale, config.epochs, config.learning_rate, config.queue_size) == (
        (1.0, 5.0), 2, 0.01, 1
    )  # fmt: skip


def test_shared_embedding_options_reach_the_experiment_and_the_order_is_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import leanrec.search.shared_embedding as shared_embedding
    from leanrec.runner.rundir import RunDirectory
    from leanrec.search.base import ExperimentResult

    done = ExperimentResult("shared_embedding", RunDirectory(tmp_path, log=None), [{}], {})
    seen = _capture_experiment(monkeypatch, shared_embedding, "run_experiment", done)  # type: ignore[arg-type]
    base = ["experiment", "shared-embedding", "--dataset", "criteo-8k", "--out", str(tmp_path)]
    assert main([*base, "--order", "file", "--chunk_size", "500", "--methods", "hashing"]) == 0
    assert (seen[0].order, seen[0].chunk_size, seen[0].methods) == ("file", 500, ("hashing",))
    assert main([*base, "--order", "random"]) == 2
    assert "order 'random': expected one of 'time', 'file'" in capsys.readouterr().err
    assert len(seen) == 1


def test_shared_embedding_streams_a_ctr_sample_in_file_order(shared_data: Path) -> None:
    from leanrec.data.errors import DataError
    from leanrec.search.shared_embedding import SharedEmbeddingExperiment
    from leanrec.search.shared_embedding.experiment import load_stream

    experiment = SharedEmbeddingExperiment(dataset="criteo-8k", data_dir=str(shared_data))
    with pytest.raises(DataError, match="--order file"):
        load_stream(experiment)
    stream = load_stream(dataclasses.replace(experiment, order="file"))
    assert len(stream) > 0
    assert (stream.source_row == np.arange(len(stream))).all()  # the file's own order


def test_recommend_continues_a_next_item_models_history(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--history`` takes raw item IDs (the file keeps them: item ID ``i`` is raw ``i + 99``
    here), answers raw IDs, and leaves the history's items out."""
    from leanrec.models.seq import build_next_item_model, save_next_item_model

    model = build_next_item_model("gru4rec", 30, {"embedding_dim": 8, "hidden_dim": 12}, seed=0)
    path = save_next_item_model(model, tmp_path / "model.pt", np.arange(100, 130))
    code = main(["recommend", "--model", str(path), "--history", "103", "107", "--k", "4"])
    assert code == 0
    (answer,) = json.loads(capsys.readouterr().out)
    expected, scores = model.eval().recommend([[4, 8]], k=4)
    assert answer["history"] == ["103", "107"]
    assert answer["items"] == [i + 99 for i in expected[0].tolist()]
    assert answer["scores"] == [round(s, 6) for s in scores[0].tolist()]
    assert not {103, 107} & set(answer["items"])
    # the same as item IDs
    assert main(["recommend", "--model", str(path), "--history", "4", "8", "--k", "4",
                 "--indices", "--compact"]) == 0  # fmt: skip
    assert json.loads(capsys.readouterr().out)[0]["items"] == expected[0].tolist()
    # errors name the problem
    assert main(["recommend", "--model", str(path), "--history", "999"]) == 2
    assert "unknown item ID 999" in capsys.readouterr().err
    assert main(["recommend", "--model", str(path), "--users", "1"]) == 2
    assert "continues a history: give --history" in capsys.readouterr().err


def test_recommend_refuses_a_history_for_a_ranking_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from leanrec.models import MF

    path = MF(5, 7).save(tmp_path / "model.pt")
    assert main(["recommend", "--model", str(path), "--history", "1"]) == 2
    assert "this is a ranking model (rank items for known users with --users)" in (
        capsys.readouterr().err
    )


def test_predict_scores_a_ctr_models_events_as_the_server_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``leanrec predict --events`` gives each JSON line's click probability, as ``POST
    /score`` does; bad lines are refused with their number."""
    from leanrec.models import load_model as load_any
    from leanrec.models.ctr import build_ctr_model
    from leanrec.serve.engine import CTREngine
    from tests.models.ctr.synthetic import feature_map

    torch.manual_seed(0)
    path = build_ctr_model("dnn", feature_map(), seed=0, embedding_dim=8, mlp_dims=(8,)).save(
        tmp_path / "ctr.pt"
    )
    events = [
        {"user_id": 3, "item_id": 7, "gender": 1, "age": 2, "genres": [2], "history": [4, 5]},
        {"user_id": 1, "item_id": 2, "gender": 0, "age": 1},
    ]
    lines = tmp_path / "events.jsonl"
    # a byte-order mark, blank lines before and between: answers name the file's lines
    text = "\ufeff\n" + json.dumps(events[0]) + "\n\n" + json.dumps(events[1]) + "\n"
    lines.write_text(text, encoding="utf-8")
    assert main(["predict", "--model", str(path), "--events", str(lines), "--compact"]) == 0
    answer = json.loads(capsys.readouterr().out)
    expected = CTREngine(load_any(path), path).score(events)["scores"]
    assert [a["line"] for a in answer] == [2, 4]
    np.testing.assert_allclose([a["probability"] for a in answer], expected, atol=1e-6)
    assert all(0.0 < a["probability"] < 1.0 for a in answer)
    # errors name the file and the line
    lines.write_text(json.dumps(events[0]) + "\n{not json\n")
    assert main(["predict", "--model", str(path), "--events", str(lines)]) == 2
    assert "events.jsonl, line 2: not a JSON object" in capsys.readouterr().err
    bad = json.dumps({**events[1], "gender": 9})
    lines.write_text("\n" + json.dumps(events[0]) + "\n\n" + bad + "\n")
    assert main(["predict", "--model", str(path), "--events", str(lines)]) == 2
    assert "events.jsonl, line 4: gender must be an index" in capsys.readouterr().err
    lines.write_text(json.dumps({**events[1], "history": 4}) + "\n")
    assert main(["predict", "--model", str(path), "--events", str(lines)]) == 2
    assert "line 1: history must be a list of indices, got 4" in capsys.readouterr().err
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("user,item\n1,2\n")
    assert main(["predict", "--model", str(path), "--pairs", str(pairs)]) == 2
    assert "a CTR model scores events: give --events" in capsys.readouterr().err
