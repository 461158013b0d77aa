"""``leanrec experiment shared-embedding`` end to end: a run killed with SIGKILL resumes to the
result of an uninterrupted one; its AutoAssign+ model loads and serves IDs it never saw through
level 1 (Python and ``leanrec predict``); NeuMF and the MSE objective run; bad input is refused
with a message naming it, before anything is written."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from leanrec.cli import main
from leanrec.data.errors import DataError
from leanrec.data.events import EventStream
from leanrec.embeddings import HierarchicalSharedEmbedding
from leanrec.evaluate.prequential import auc
from leanrec.models import load_model
from leanrec.search.shared_embedding import run_experiment
from tests.search.contract import comparable
from tests.search.shared_embedding.test_contract import tiny_experiment, tiny_stream

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread: None) -> None:
    """The experiment sets one torch thread itself; the fixture restores the default after."""


def _files(directory: Path) -> dict[str, bytes]:
    """Every file under ``directory`` with its bytes (what a refused invocation must leave)."""
    return {
        str(p.relative_to(directory)): p.read_bytes() for p in directory.rglob("*") if p.is_file()
    }


# ---------------------------------------------------------------------------------- ML-1M, killed
def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "leanrec.cli", "experiment", "shared-embedding", *args]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}


def test_a_killed_ml1m_run_resumes_to_the_same_result_and_its_model_serves_cold_ids(
    shared_data: Path, tmp_path: Path
) -> None:
    common = ["--dataset", "ml-1m-partial", "--data-dir", str(shared_data),
              "--methods", "autoassign", "--seeds", "0", "--max_events", "12000",
              "--chunk_size", "300", "--checkpoint_every", "2", "--log_every", "3"]  # fmt: skip
    killed, whole = tmp_path / "killed", tmp_path / "whole"

    # a real process, killed with SIGKILL after a progress line of the evaluated stream
    process = subprocess.Popen(
        _cli(*common, "--out", str(killed)),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=_env(),
    )  # fmt: skip
    assert process.stdout is not None
    before_kill = []
    for line in process.stdout:
        before_kill.append(line)
        if "chunk 15," in line:  # 40 chunks in all; the last checkpoint is after chunk 14
            process.send_signal(signal.SIGKILL)
            break
    process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL, "".join(before_kill)
    assert not (killed / "results.json").exists()
    assert not (killed / "rows.json").exists()  # no row finished
    assert list((killed / "checkpoints").glob("*/chunk-*")), "no checkpoint to resume from"

    resumed = subprocess.run(
        _cli(*common, "--out", str(killed)), capture_output=True, text=True, env=_env()
    )
    assert resumed.returncode == 0, resumed.stderr
    # it continued mid-stream: no progress line before the checkpoint was printed again
    assert "chunk 3," not in resumed.stdout and "chunk 18," in resumed.stdout
    uninterrupted = subprocess.run(
        _cli(*common, "--out", str(whole)), capture_output=True, text=True, env=_env()
    )
    assert uninterrupted.returncode == 0, uninterrupted.stderr
    for name in ("rows.json", "results.json"):
        a, b = (json.loads((d / name).read_text()) for d in (killed, whole))
        assert comparable(a) == comparable(b), name
    assert not (killed / "checkpoints").exists()  # every row finished: none left behind
    row = json.loads((whole / "rows.json").read_text())[0]
    assert row["evaluated_events"] == 9_600  # 12,000 events, the first 20% warm-up

    # the saved model with its assignment: leanrec.models.load_model, family "stream"
    path = whole / "model_autoassign_bce.pt"
    loaded = load_model(path)
    served = loaded.stream
    assert loaded.family == "stream" and served is not None
    tables = loaded.model.id_tables()
    assert all(isinstance(t, HierarchicalSharedEmbedding) for t in tables.values())
    assert int(tables["user"].position_counts()[-1]) > 0  # users that earned their own row
    user, item = served.raw_ids["user"][0], served.raw_ids["item"][0]
    new_user = max(served.raw_ids["user"]) + 1
    new_item = max(served.raw_ids["item"]) + 1
    cold = served.predict({"user": [new_user, user, new_user], "item": [item, new_item, new_item]})
    assert list(served.is_known("user", [new_user, user])) == [False, True]

    # expected: the model scoring level 1's shared vector in place of the unseen ID's
    index = {
        f: torch.tensor([served.vocabularies[f][v]]) for f, v in (("user", user), ("item", item))
    }
    level_1 = {f: t.shared[:1] for f, t in tables.items()}
    known = {f: tables[f].lookup(index[f]) for f in ("user", "item")}
    with torch.no_grad():
        logits = torch.cat([
            loaded.model.logits_of_vectors({"user": level_1["user"], "item": known["item"]}),
            loaded.model.logits_of_vectors({"user": known["user"], "item": level_1["item"]}),
            loaded.model.logits_of_vectors(level_1),
        ])  # fmt: skip
    np.testing.assert_allclose(cold, torch.sigmoid(logits.double()).numpy(), rtol=1e-6)
    assert len(set(np.round(cold, 6))) == 3  # three different scores: the check has teeth

    # the same through the command line
    pairs = tmp_path / "pairs.csv"
    pairs.write_text(f"user,item\n{new_user},{item}\n{user},{new_item}\n{new_user},{new_item}\n")
    scored = subprocess.run(
        [sys.executable, "-m", "leanrec.cli", "predict", "--model", str(path),
         "--pairs", str(pairs), "--compact"],
        capture_output=True, text=True, env=_env(),
    )  # fmt: skip
    assert scored.returncode == 0, scored.stderr
    events = json.loads(scored.stdout)
    assert [e["cold"] for e in events] == [["user"], ["item"], ["user", "item"]]
    np.testing.assert_allclose([e["probability"] for e in events], cold, atol=1e-6)


# ---------------------------------------------------------------------------------- NeuMF, MSE
def test_neumf_with_both_objectives_runs_and_its_models_load_and_predict(tmp_path: Path) -> None:
    stream = tiny_stream()
    experiment = tiny_experiment(
        tmp_path / "run", 0, methods=("all_unique", "autoassign"), model="neumf",
        model_options={}, objectives=("bce", "mse"),
    )  # fmt: skip
    result = run_experiment(experiment, log=lambda _: None, stream=stream)
    rows = {(r["objective"], r["method"]): r["total"] for r in result.rows}
    assert set(rows) == {(o, m) for o in ("bce", "mse") for m in ("all_unique", "autoassign")}
    assert rows["bce", "autoassign"]["auc"] > 0.6 and rows["bce", "autoassign"]["mse"] is None
    assert rows["mse", "autoassign"]["auc"] is None
    rating = stream.rating
    assert rating is not None
    evaluated = rating[stream.warmup_size(experiment.warmup_fraction) :]
    # predicting every rating by the evaluated stream's own mean would score its variance
    assert rows["mse", "autoassign"]["mse"] < float(evaluated.var())

    last = stream[len(stream) - experiment.chunk_size :]  # learnt last, so fitted
    raw = {"user": last.user_raw.tolist(), "item": last.item_raw.tolist()}
    bce, mse = (load_model(result.artifacts[f"model_autoassign_{o}"]) for o in ("bce", "mse"))
    assert bce.family == mse.family == "stream" and bce.stream and mse.stream
    assert type(bce.model.model).__name__ == "NeuMF"
    probability = bce.stream.predict(raw)
    assert auc(last.label.astype(np.float64), probability) > 0.6
    # the MSE model's ratings are offset by the mean rating of the first chunk it learnt
    assert mse.stream.rating_offset == pytest.approx(float(rating[: experiment.chunk_size].mean()))
    predicted = mse.stream.predict(raw)
    assert float(((predicted - last.rating) ** 2).mean()) < float(last.rating.var())
    # an unseen user reads level 1 of its table
    never_seen = max(mse.stream.raw_ids["user"]) + 1
    mse.stream.predict({"user": [never_seen], "item": [raw["item"][0]]})
    table = mse.model.id_tables()["user"]
    new = torch.tensor([mse.stream.known_sizes["user"]])  # the cold index, not a new entry
    torch.testing.assert_close(table.lookup(new), table.shared[:1])
    # text that names no integer ID is unseen too: scored at the same cold index
    assert mse.stream.predict({"user": ["never-seen"], "item": [raw["item"][0]]}).tolist() == (
        mse.stream.predict({"user": [never_seen], "item": [raw["item"][0]]}).tolist()
    )


def test_the_command_line_runs_neumf_with_both_objectives_and_predicts_with_each_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, out = _write_ml100k(tmp_path / "data"), tmp_path / "run"
    args = _experiment_args(data, out, "--model", "neumf", "--objectives", "bce", "mse")
    assert main([*args, "--methods", "autoassign"]) == 0
    rows = json.loads((out / "rows.json").read_text())
    assert [(r["objective"], r["method"]) for r in rows] == [
        ("bce", "autoassign"),
        ("mse", "autoassign"),
    ]
    assert rows[0]["total"]["auc"] is not None and rows[1]["total"]["mse"] is not None
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("user,item\n1,1\n1000,1\n")  # ML-100K IDs are ints; user 1000 is unseen
    capsys.readouterr()
    for objective, what in (("bce", "probability"), ("mse", "rating")):
        model = out / f"model_autoassign_{objective}.pt"
        assert main(["predict", "--model", str(model), "--pairs", str(pairs)]) == 0
        events = json.loads(capsys.readouterr().out)
        assert [e["cold"] for e in events] == [[], ["user"]]
        assert all(np.isfinite(e[what]) for e in events)
        if objective == "bce":
            assert all(0.0 < e[what] < 1.0 for e in events)


# ---------------------------------------------------------------------------------- bad input
def _write_ml100k(root: Path, lines: int = 600, bad_line: int | None = None) -> Path:
    """A small data directory in ML-100K's format: ``lines`` ratings (one malformed line at
    ``bad_line``, 1-based, if given)."""
    rng = np.random.default_rng(0)
    folder = root / "movielens-100k"
    folder.mkdir(parents=True, exist_ok=True)
    rows = [
        f"{rng.integers(1, 40)}\t{rng.integers(1, 30)}\t{rng.integers(1, 6)}\t{880000000 + i}"
        for i in range(lines)
    ]
    if bad_line is not None:
        rows[bad_line - 1] = "7\t3\t4\tlater"
    (folder / "u.data").write_text("\n".join(rows) + "\n")
    genres = "|".join(["0"] * 19)
    (folder / "u.item").write_text(
        "".join(f"{i}|Film {i} (1995)|01-Jan-1995||http://x|{genres}\n" for i in range(1, 30))
    )
    (folder / "u.user").write_text("".join(f"{u}|30|F|other|00000\n" for u in range(1, 40)))
    return root


def _experiment_args(data_dir: Path, out: Path, *extra: str) -> list[str]:
    return ["experiment", "shared-embedding", "--dataset", "ml-100k", "--data-dir",
            str(data_dir), "--out", str(out), "--methods", "all_unique", "--seeds", "0",
            "--chunk_size", "100", *extra]  # fmt: skip


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--chunk_size", "0"], "chunk_size must be >= 1, got 0"),
        (["--chunk_size", "-5"], "chunk_size must be >= 1, got -5"),
        (["--warmup_fraction", "0"], r"warmup_fraction must be in (0, 1), got 0"),
        (["--warmup_fraction", "1.0"], r"warmup_fraction must be in (0, 1), got 1.0"),
        (["--validation_fraction", "1.2"], r"validation_fraction must be in (0, 1), got 1.2"),
        (["--methods", "autoassign", "auto_assign"],
         "unknown shared-embedding method(s) ['auto_assign']; known: all_unique"),
        (["--model", "neumf", "--trainer_table_optimizer", "row_adagrad"],
         "row optimisers need a CTR model, got NeuMF; the table optimisers 'adagrad'"),
        (["--model", "deepfn"], "unknown CTR model 'deepfn'"),
        (["--max_events", "3"], "too short to split into a training prefix and a validation"),
        (["--max_events", "0"], "max_events must be >= 1"),
    ],
)  # fmt: skip
def test_bad_settings_are_refused_before_anything_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    data = _write_ml100k(tmp_path / "data")
    out = tmp_path / "run"
    assert main(_experiment_args(data, out, *extra)) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_a_malformed_line_is_named_and_an_existing_run_is_left_as_it_was(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    assert main(_experiment_args(_write_ml100k(tmp_path / "good"), out)) == 0
    assert json.loads((out / "rows.json").read_text())  # a finished row to protect
    before = _files(out)
    capsys.readouterr()

    bad = _write_ml100k(tmp_path / "bad", bad_line=123)
    assert main(_experiment_args(bad, out)) == 2
    err = capsys.readouterr().err
    assert f"{bad / 'movielens-100k' / 'u.data'}, line 123:" in err
    assert "field 'timestamp' is not an integer: 'later'" in err
    empty = tmp_path / "empty"
    _write_ml100k(empty)
    (empty / "movielens-100k" / "u.data").write_text("")
    assert main(_experiment_args(empty, out)) == 2
    assert "u.data: empty dataset: no data lines" in capsys.readouterr().err
    assert main(_experiment_args(tmp_path / "nowhere", out)) == 2
    assert "dataset 'ml-100k' not found" in capsys.readouterr().err
    # other settings on a directory with rows: refused, naming the setting and both values
    assert main(_experiment_args(tmp_path / "good", out, "--chunk_size", "50")) == 2
    assert "holds the work (rows.json, warmup_scores.json) of a run with other settings: " \
        "chunk_size 100 -> 50" in capsys.readouterr().err  # fmt: skip
    assert _files(out) == before

    # its own settings (and more seeds, a resumable change) continue it
    assert main(_experiment_args(tmp_path / "good", out, "--seeds", "0", "1")) == 0
    rows = json.loads((out / "rows.json").read_text())
    assert [r["seed"] for r in rows] == [0, 1]
    assert rows[0] == json.loads(before["rows.json"])[0]


def test_streams_without_ratings_or_times_are_refused_with_the_option_to_use(
    tmp_path: Path,
) -> None:
    labels_only = EventStream.from_arrays(
        time=np.arange(2000), user=np.arange(2000) % 37, item=np.arange(2000) % 23,
        label=(np.arange(2000) % 3 == 0).astype(np.float32), name="clicks",
    )  # fmt: skip
    experiment = tiny_experiment(tmp_path / "run", 0, objectives=("bce", "mse"))
    with pytest.raises(DataError, match=r"'clicks' has no ratings.*--objectives bce"):
        run_experiment(experiment, log=lambda _: None, stream=labels_only)
    assert not (tmp_path / "run").exists()


def test_ctr_samples_need_file_order_and_have_no_ratings(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    args = ["experiment", "shared-embedding", "--dataset", "criteo-8k", "--data-dir",
            str(shared_data), "--out", str(out), "--methods", "all_unique"]  # fmt: skip
    assert main(args) == 2
    assert "without event times; stream it in file order" in capsys.readouterr().err
    assert main([*args, "--order", "file", "--objectives", "bce", "mse"]) == 2
    assert "'criteo-8k' has no ratings, so objective 'mse'" in capsys.readouterr().err
    assert not out.exists()


def test_predict_names_a_bad_pairs_file_and_keeps_the_raw_id_types(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = run_experiment(
        tiny_experiment(tmp_path / "run", 0, methods=("autoassign",)),
        log=lambda _: None, stream=tiny_stream(),
    )  # fmt: skip
    model = str(result.artifacts["model_autoassign_bce"])
    pairs = tmp_path / "pairs.csv"
    cases: list[tuple[str, str]] = [
        ("user,item\n1,2\n3\n", f"{pairs}, line 3: expected 2 values (user, item), found 1"),
        ("user,product\n1,2\n", f"{pairs}, line 1: the header names no column ['item']"),
        ("user,item\n", "no events to score"),
        ("user,item,user\n1,2,3\n", f"{pairs}, line 1: column 'user' appears 2 times"),
    ]
    for text, message in cases:
        pairs.write_text(text)
        assert main(["predict", "--model", model, "--pairs", str(pairs)]) == 2
        assert message in capsys.readouterr().err
    pairs.write_bytes(b"user,item\n1,2\n3,\xff4\n")
    assert main(["predict", "--model", model, "--pairs", str(pairs)]) == 2
    assert f"{pairs}, line 3: not UTF-8 text: byte 0xff" in capsys.readouterr().err
    assert main(["predict", "--model", model, "--pairs", str(tmp_path / "absent.csv")]) == 2
    assert "absent.csv: pairs file not found" in capsys.readouterr().err
    # raw IDs keep their type: the stream's user IDs are ints, so "1" is user 1
    served = load_model(model).stream
    assert served is not None
    users: list[Any] = served.raw_ids["user"][:2]
    items: list[Any] = served.raw_ids["item"][:2]
    pairs.write_text("user,item\n" + "".join(f"{u},{i}\n" for u, i in zip(users, items)))
    assert main(["predict", "--model", model, "--pairs", str(pairs)]) == 0
    events = json.loads(capsys.readouterr().out)
    assert [e["cold"] for e in events] == [[], []]
    np.testing.assert_allclose(
        [e["probability"] for e in events],
        served.predict({"user": users, "item": items}),
        atol=1e-6,
    )
