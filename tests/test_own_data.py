"""A file of one's own on the command line and in Python: tables, sequence files, next-item
models, the README's own-data example, and the habits a newcomer meets first (metric results as
read-only mappings, one log line per epoch off a terminal)."""

from __future__ import annotations

import json
import re
import shlex
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from leanrec.api import DataFile, NextItemTrainConfig, TrainConfig, train, train_next_item
from leanrec.cli import main
from leanrec.data.errors import DataError
from leanrec.data.presets import prepare_split
from leanrec.data.registry import load_dataset
from leanrec.data.sequential import NextItemSplit
from leanrec.evaluate import RankingResult
from leanrec.train import TrainerConfig
from leanrec.train.loop import LoopConfig, epoch_line
from leanrec.train.sequential import SequentialTrainerConfig

ROOT = Path(__file__).resolve().parents[1]
RATINGS = ROOT / "tests" / "examples" / "ratings.csv"
SEQUENCES = ROOT / "tests" / "examples" / "sequences.txt"
FAST = TrainerConfig(max_epochs=2, learning_rate=0.01, batch_size=4096, progress=False)


def _readme_own_data_command() -> list[str]:
    """The command of the README's own-data example (the bash block after its marker)."""
    text = (ROOT / "README.md").read_text()
    block = text.split("<!-- own-data-example -->", 1)[1].split("```bash\n", 1)[1]
    command = block.split("```", 1)[0].replace("\\\n", " ")
    return shlex.split(command)


def test_readme_own_data_example_prints_metrics(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    argv = _readme_own_data_command()
    assert argv[:2] == ["leanrec", "train"] and "--data" in argv
    monkeypatch.chdir(ROOT)  # the README's path is relative to the repository
    assert main([*argv[1:], "--runs", str(tmp_path), "--progress", "false"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^recall@20\s+\d\.\d{4}\s+\d\.\d{4}$", out, re.MULTILINE), out
    (run_dir,) = tmp_path.iterdir()
    assert run_dir.name.startswith("ratings-mf-")  # named after the file
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["dataset"] == "ratings"
    # --threshold 4: only ratings 4 and 5 are interactions (hand count of the file)
    table = pd.read_csv(RATINGS)
    assert metrics["users"] == table.loc[table.rating >= 4, "userId"].nunique()
    assert metrics["items"] == table.loc[table.rating >= 4, "movieId"].nunique()
    ranked = re.search(r"^test: (\d+) users ranked \((\d+) others have no test item", out, re.M)
    assert ranked is not None, out
    assert int(ranked[1]) + int(ranked[2]) == metrics["users"]


def test_repeated_pairs_are_named_and_can_be_kept_once(tmp_path: Path) -> None:
    path = tmp_path / "clicks.csv"
    path.write_text("user,item,t\nu1,a,3\nu1,a,1\nu1,b,2\nu2,a,5\nu1,a,4\n")
    with pytest.warns(UserWarning, match=r"clicks\.csv: 2 rows repeat a \(user, item\) pair"):
        kept = DataFile(str(path)).load()
    assert len(kept) == 5
    first = DataFile(str(path), duplicates="first").load()
    assert len(first) == 3 and first.user_vocab == kept.user_vocab  # same vocabularies
    # by time where there is a time column: u1's "a" at t = 1 first, t = 4 last
    timed = DataFile(str(path), time_col="t", duplicates="first").load()
    assert timed.timestamps is not None and sorted(timed.timestamps.tolist()) == [1, 2, 5]
    last = DataFile(str(path), time_col="t", duplicates="last").load()
    assert last.timestamps is not None and sorted(last.timestamps.tolist()) == [2, 4, 5]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a time-ordered file repeats pairs as it may
        assert len(DataFile(str(path), time_col="t").load()) == 5
    from leanrec.cli import dataset_of, make_parser

    args, _ = make_parser().parse_known_args(["train", "--data", str(path), "--duplicates", "last"])
    assert dataset_of(args, "synthetic") == DataFile(str(path), duplicates="last")


def test_data_file_reads_columns_threshold_and_names_outputs() -> None:
    table = pd.read_csv(RATINGS)
    everything = DataFile(str(RATINGS), user_col="userId", item_col="movieId")
    data = load_dataset(everything)
    assert not isinstance(data, tuple)
    assert len(data) == len(table) and data.ratings is None and data.name == "ratings"
    positives = DataFile(
        str(RATINGS),
        user_col="userId",
        item_col="movieId",
        rating_col="rating",
        time_col="timestamp",
        threshold=4,
    ).load()
    assert len(positives) == int((table.rating >= 4).sum())
    assert positives.ratings is not None and positives.ratings.min() >= 4
    assert positives.timestamps is not None
    assert str(everything) == "ratings"


def test_data_file_protocol_follows_the_kind_of_data() -> None:
    plain = DataFile(str(RATINGS), user_col="userId", item_col="movieId")
    timed = DataFile(str(RATINGS), user_col="userId", item_col="movieId", time_col="timestamp")
    _, protocol = prepare_split(plain, seed=0)
    assert protocol.name == "default"
    split, protocol = prepare_split(timed, seed=0)
    assert protocol.name == "leave-one-out"
    # leave-one-out in time order: each user's test item is their latest
    table = pd.read_csv(RATINGS)
    latest = table.sort_values("timestamp").groupby("userId").movieId.last()
    test = split.test
    users = test.user_vocab.to_raw(test.users)
    items = test.item_vocab.to_raw(test.items)
    assert dict(zip(users.tolist(), items.tolist())) == latest.to_dict()


def test_data_file_refuses_inconsistent_settings(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="threshold needs rating_col"):
        DataFile(str(RATINGS), threshold=4)
    with pytest.raises(ValueError, match="format 'csv'"):
        DataFile(str(RATINGS), format="csv")  # type: ignore[arg-type]
    with pytest.raises(DataError, match=r"missing column\(s\) \['user'\]"):
        DataFile(str(RATINGS), item_col="movieId").load()
    high = DataFile(
        str(RATINGS), user_col="userId", item_col="movieId", rating_col="rating", threshold=6
    )
    with pytest.raises(DataError, match="no row has rating >= 6"):
        high.load()


def test_train_on_own_table_in_python() -> None:
    data = DataFile(
        str(RATINGS), user_col="userId", item_col="movieId", rating_col="rating", threshold=4
    )
    run = train(TrainConfig(dataset=data, model="mf", trainer=FAST, seed=1))
    assert run.split.train.name.startswith("ratings")
    assert {"recall@20", "ndcg@10"} <= set(run.test_metrics)


def test_cli_refuses_data_and_dataset_together(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--data", str(RATINGS), "--dataset", "ml-1m"]) == 2
    assert "--data FILE or --dataset NAME, not both" in capsys.readouterr().err


def test_sequences_file_trains_sasrec_and_gru4rec_from_the_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for model, negatives in (("sasrec", "uniform"), ("gru4rec", "all")):
        run_dir = tmp_path / model
        code = main(
            [
                "train",
                "--data",
                str(SEQUENCES),
                "--format",
                "sequences",
                "--model",
                model,
                "--negatives",
                negatives,
                "--run-dir",
                str(run_dir),
                "--epochs",
                "1",
                "--embedding_dim",
                "8",
                "--progress",
                "false",
            ]
        )
        assert code == 0
        out = capsys.readouterr().out
        assert re.search(r"^ndcg@10\s+\d\.\d{4}\s+\d\.\d{4}$", out, re.MULTILINE), out
        metrics = json.loads((run_dir / "metrics.json").read_text())
        assert metrics["dataset"] == "sequences" and metrics["negatives"] == negatives
        assert (run_dir / "model.pt").is_file()
    assert "every item" in out  # gru4rec with --negatives all ranks against all items


def test_next_item_negatives_default_is_uniform() -> None:
    lines = SEQUENCES.read_text().split("\n")
    assert NextItemTrainConfig().negatives == "uniform"
    data = DataFile(str(SEQUENCES), format="sequences").load()
    assert NextItemSplit.from_interactions(data, n_negatives=20).negative_sampling == "uniform"
    assert len(data) == len([line for line in lines if line.strip()])


def test_train_next_item_with_all_items_ranks_the_whole_catalogue(tmp_path: Path) -> None:
    config = NextItemTrainConfig(
        dataset=DataFile(str(SEQUENCES), format="sequences"),
        model="gru4rec",
        negatives="all",
        model_options={"embedding_dim": 8, "hidden_dim": 8},
        trainer=SequentialTrainerConfig(max_epochs=1, progress=False),
        run_dir=str(tmp_path),
    )
    run = train_next_item(config)
    assert run.protocol == "full"
    # full ranking: a user's rank ranges over every item, so the metrics are those of a full list
    assert set(run.test_metrics) >= {"hit@10", "ndcg@5", "mrr"}
    # the saved model answers in the file's own item IDs
    from leanrec.models import load_model

    loaded = load_model(tmp_path / "model.pt")
    data = DataFile(str(SEQUENCES), format="sequences").load()
    assert loaded.item_vocab is not None
    assert loaded.item_vocab.raw_ids.tolist() == data.item_vocab.raw_ids.tolist()
    assert loaded.model.history_length == config.max_length  # served as trained


def test_next_item_models_need_time_order(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "train",
            "--data",
            str(RATINGS),
            "--user-col",
            "userId",
            "--item-col",
            "movieId",
            "--model",
            "sasrec",
        ]
    )
    assert code == 2
    assert "has no time order" in capsys.readouterr().err


def test_architecture_choice_follows_the_kind_of_data() -> None:
    from leanrec.cli import is_sequence_data

    assert is_sequence_data("beauty") and is_sequence_data("beauty-s3rec")
    assert not is_sequence_data("ml-1m-ctr") and not is_sequence_data("ml-1m")
    assert is_sequence_data(DataFile(str(SEQUENCES), format="sequences"))
    assert is_sequence_data(DataFile(str(RATINGS), time_col="timestamp"))
    assert not is_sequence_data(DataFile(str(RATINGS)))


def test_ranking_result_is_a_read_only_mapping() -> None:
    result = RankingResult(
        users=np.arange(2),
        per_user={},
        mean={"recall@10": 0.5, "ndcg@10": 0.25},
        n_users_skipped=0,
        seconds=0.1,
    )
    assert len(result) == 2 and list(result) == ["recall@10", "ndcg@10"]
    assert dict(result.items()) == {"recall@10": 0.5, "ndcg@10": 0.25}
    assert result["ndcg@10"] == 0.25 and result.get("hit@10") is None
    with pytest.raises(TypeError, match="does not support item assignment"):
        result["recall@10"] = 1.0  # type: ignore[index]
    with pytest.raises(KeyError, match="no metric 'hit@10'"):
        result["hit@10"]


def test_each_epoch_logs_one_line_off_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    # pytest's stderr is no terminal: progress=None logs a line per epoch, progress=False none
    data = DataFile(str(RATINGS), user_col="userId", item_col="movieId")
    train(TrainConfig(dataset=data, model="mf", trainer=FAST))
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("epoch")]
    assert lines == []  # FAST has progress=False
    logged = TrainerConfig(max_epochs=2, learning_rate=0.01, batch_size=4096)
    run = train(TrainConfig(dataset=data, model="mf", trainer=logged))
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("epoch")]
    assert len(lines) == run.train_result.epochs_run == 2
    assert lines[0].startswith("epoch 1/2: loss ") and "valid_ndcg@20" in lines[0]


def test_epoch_line_format() -> None:
    rules = LoopConfig(max_epochs=100, patience=3, metric="valid_ndcg@20")
    record = {
        "epoch": 3,
        "loss": 0.43214,
        "valid_ndcg@20": 0.05671,
        "train_seconds": 1.0,
        "eval_seconds": 0.25,
    }
    assert epoch_line(record, rules, 3) == (
        "epoch 3/100: loss 0.4321, valid_ndcg@20 0.0567 (best epoch 3), 1.2 s"
    )
    assert epoch_line({"epoch": 4, "loss": 0.5, "train_seconds": 2.0}, rules, 3) == (
        "epoch 4/100: loss 0.5000, 2.0 s"
    )


@pytest.mark.parametrize(
    ("capability", "experiment_class", "out_dir"),
    [
        ("embedding-size", "EmbeddingSizeExperiment", "runs/embedding-size-ratings-lightgcn"),
        ("sketch", "SketchExperiment", "runs/sketch-ratings"),
        (
            "shared-embedding",
            "SharedEmbeddingExperiment",
            "runs/shared-embedding-ratings-deepfm",
        ),
        ("adaptive", "AdaptiveExperiment", "runs/adaptive-ratings-deepfm"),
        ("architecture", "RetrievalExperiment", "runs/architecture-ratings"),
    ],
)
def test_every_experiment_takes_own_data(
    capability: str,
    experiment_class: str,
    out_dir: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import leanrec.cli

    seen: list[object] = []

    def capture(run_experiment: object, experiment: object) -> object:
        seen.append(experiment)
        raise SystemExit(0)  # the wiring is what is tested here, not the (long) experiment

    monkeypatch.setattr(leanrec.cli, "_run_table", capture)
    argv = [
        "experiment",
        capability,
        "--data",
        str(RATINGS),
        "--user-col",
        "userId",
        "--item-col",
        "movieId",
        "--rating-col",
        "rating",
        "--time-col",
        "timestamp",
    ]
    with pytest.raises(SystemExit):
        main(argv)
    (experiment,) = seen
    assert type(experiment).__name__ == experiment_class
    dataset = experiment.dataset  # type: ignore[attr-defined]
    assert isinstance(dataset, DataFile) and dataset.rating_col == "rating"
    assert experiment.out_dir == out_dir  # type: ignore[attr-defined]


def test_event_stream_of_own_table_labels_by_its_threshold() -> None:
    from leanrec.data.events import EventStream

    data = DataFile(
        str(RATINGS),
        user_col="userId",
        item_col="movieId",
        rating_col="rating",
        time_col="timestamp",
        threshold=5,
    )
    stream = EventStream.from_dataset(data, order="time")
    table = pd.read_csv(RATINGS).sort_values("timestamp", kind="stable")
    assert len(stream) == len(table)  # the threshold labels events, it drops none
    assert stream.label.sum() == int((table.rating >= 5).sum())
    assert np.all(np.diff(stream.time) >= 0)


@pytest.mark.parametrize(
    ("protocol", "message"),
    [
        ("temporal", "protocol 'temporal' splits in time order: name the time column"),
        ("recbole", "protocol 'recbole' keeps ratings >= 3: name the rating column of a table"),
        ("lightgcn", "protocol 'lightgcn' needs given train/test files"),
    ],
)
def test_protocol_a_file_cannot_follow_names_the_missing_flag(protocol: str, message: str) -> None:
    data = DataFile(str(RATINGS), user_col="userId", item_col="movieId")
    with pytest.raises(DataError, match=message):
        prepare_split(data, protocol)


def test_ranking_against_every_item_needs_no_sampled_candidates(tmp_path: Path) -> None:
    """A catalogue of 30 items leaves fewer than the 100 sampled candidates a user: ranking
    against every item draws none, so it trains; sampling names the option to lower."""
    rng = np.random.default_rng(0)
    lines = [" ".join(map(str, rng.choice(30, 8, replace=False) + 1)) for _ in range(6)]
    small = tmp_path / "small.txt"
    small.write_text("\n".join(f"{u} {line}" for u, line in enumerate(lines, start=1)) + "\n")
    data = DataFile(str(small), format="sequences", layout="lines")
    fast = SequentialTrainerConfig(max_epochs=1, progress=False)
    options = {"embedding_dim": 8, "hidden_dim": 8}
    run = train_next_item(
        NextItemTrainConfig(dataset=data, model="gru4rec", negatives="all", trainer=fast,
                            model_options=options)
    )  # fmt: skip
    assert run.protocol == "full" and set(run.test_metrics) >= {"hit@10", "mrr"}
    # its split drew no sampled negatives: the sampled protocol refuses it (a hit@k of 1.0)
    from leanrec.evaluate.sampled import evaluate_sampled

    with pytest.raises(ValueError, match="holds no sampled negatives"):
        evaluate_sampled(lambda inputs, candidates: candidates.float(), run.split.test)
    with pytest.raises(DataError, match=r"fewer than n_negatives=100 \(lower the n_negatives"):
        train_next_item(
            NextItemTrainConfig(dataset=data, model="gru4rec", trainer=fast, model_options=options)
        )


def test_too_little_data_to_test_is_refused_before_training(tmp_path: Path) -> None:
    tiny = tmp_path / "tiny.csv"
    tiny.write_text("user,item\n1,2\n1,3\n")
    with pytest.raises(DataError, match=r"tiny: the split leaves no test interaction to rank"):
        train(TrainConfig(dataset=DataFile(str(tiny)), model="mf", trainer=FAST, run_dir=None))


def test_a_test_part_that_repeats_training_pairs_is_refused_before_training(
    tmp_path: Path,
) -> None:
    """A given test file that only repeats training or validation pairs leaves the test
    nothing to rank (it ranks them apart): said before training, not after it."""
    from leanrec.api.training import _check_test_targets
    from leanrec.data.interactions import Interactions, Split

    train_part = Interactions.from_raw(np.array([1, 1, 2, 2, 3]), np.array([5, 6, 5, 7, 6]))
    users, items = train_part.user_vocab, train_part.item_vocab

    def part(rows: list[tuple[int, int]]) -> Interactions:
        u, i = np.array([r[0] for r in rows]), np.array([r[1] for r in rows])
        return Interactions(u, i, user_vocab=users, item_vocab=items)

    valid_part = part([(2, 1)])
    repeated = Split(train_part, valid_part, part([(0, 0), (2, 1)]))  # a train, a valid pair
    with pytest.raises(DataError, match="all 2 test interactions are also training or valid"):
        _check_test_targets(repeated, "given")
    _check_test_targets(Split(train_part, valid_part, part([(0, 2)])), "given")  # one to rank
    with pytest.raises(DataError, match="the split leaves no test interaction to rank"):
        _check_test_targets(Split(train_part, valid_part, part([])), "given")
