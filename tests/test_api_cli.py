"""The Python API and the ``leanrec`` command end to end on the embedded synthetic data."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from leanrec.api import TrainConfig, load_model, refit, train
from leanrec.cli import _parse_options, main
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


def test_cli_datasets_lists_presence(shared_data: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "leanrec.cli", "datasets", "--data-dir", str(shared_data), "--json"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rows = {row["name"]: row for row in json.loads(out)["datasets"]}
    assert rows["ml-1m"]["present"] is True
    assert rows["gowalla"]["present"] is True
    assert rows["yelp2018"]["present"] is False


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


def test_cli_resume_needs_run_dir(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--resume", "--epochs", "1"]) == 2
    assert "--run-dir" in capsys.readouterr().err


def test_experiment_seed_reaches_the_search_and_seeds_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import leanrec.search.embedding_size as embedding_size

    seen = []

    def fake_run(exp, log):  # type: ignore[no-untyped-def]
        seen.append(exp)
        (Path(exp.out_dir) / "table.md").write_text("table")
        return {"rows": [{"method": "su"}]}

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
