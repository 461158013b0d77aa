"""The adaptive experiment end to end on a tiny stream: rows per session, the headline λ rule,
the saved model, calendar-week sessions and refused settings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from leanrec.data.synthetic_stream import make_synthetic_stream
from leanrec.models import load_model
from leanrec.search.adaptive import AdaptiveConfig, AdaptiveExperiment, run_experiment
from leanrec.search.adaptive.experiment import headline_penalty
from leanrec.search.adaptive.session import session_plan
from tests.search.adaptive.test_contract import tiny_experiment, tiny_stream


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread: None) -> None:
    """One torch thread (the experiment sets it; the fixture restores the default)."""


def test_headline_penalty_rule() -> None:
    tried = [(0.0, 0.700), (0.02, 0.699), (0.1, 0.690), (0.5, 0.650)]
    # floor = 0.995 · 0.701 = 0.697495: λ 0 and 0.02 keep it, the largest is 0.02
    assert headline_penalty(0.701, tried, 0.005) == 0.02
    # floor 0.7164 is above every λ: the best AUC's λ
    assert headline_penalty(0.72, tried, 0.005) == 0.0
    assert headline_penalty(0.70, tried, 0.10) == 0.5


def test_rows_hold_every_evaluated_session(tmp_path: Path) -> None:
    stream = tiny_stream()
    experiment = tiny_experiment(tmp_path / "run", 0, methods=("fixed_medium", "adaptive"))
    result = run_experiment(experiment, log=lambda _: None, stream=stream)
    assert {(r["method"], r["penalty"]) for r in result.rows} == {
        ("fixed_medium", None),
        ("adaptive", result.rows[-1]["penalty"]),
    }
    for row in result.rows:
        assert [s["session"] for s in row["sessions"]] == [2, 3, 4]
        assert [s["session"] for s in row["warmup_sessions"]] == [0, 1]
        assert sum(s["stop"] - s["start"] for s in row["sessions"]) == row["total"]["n"]
        assert row["total"]["n"] == len(stream) - stream.warmup_size(0.2)
        for session in row["sessions"]:
            assert session["auc"] is not None and 0.0 <= session["auc"] <= 1.0
            assert session["model_bytes"] > session["parameters"] * 4  # tables come on top
    medium = next(r for r in result.rows if r["method"] == "fixed_medium")
    assert {tuple(s["widths"]) for s in medium["sessions"]} == {(200, 80)}
    assert medium["sessions"][0]["parameters"] == 48 * 200 + 200 + 200 * 80 + 80 + 80
    scores = result.run_dir.read_json("warmup_scores.json")
    assert {r["method"] for r in scores} == {"fixed_large", "adaptive"}
    assert (result.run_dir.path / "table.md").read_text().count("| fixed_medium |") == 1
    for plot in ("auc_vs_parameters.png", "sessions.png", "choices.png"):
        assert (result.run_dir.path / plot).stat().st_size > 0


def test_saved_model_loads_and_predicts(tmp_path: Path) -> None:
    stream = tiny_stream()
    result = run_experiment(
        tiny_experiment(tmp_path / "run", 0, methods=("adaptive",)),
        log=lambda _: None,
        stream=stream,
    )
    path = result.artifacts["model_adaptive"]
    row = result.rows[0]
    served = load_model(path).stream
    assert served is not None
    tower_params = sum(p.numel() for p in served.model.parameters())
    assert tower_params > 0
    users = stream.user_raw[-50:].tolist()
    items = stream.item_raw[-50:].tolist()
    probability = served.predict({"user": users, "item": items})
    assert probability.shape == (50,)
    assert np.all((probability > 0) & (probability < 1))
    assert row["end_widths"] == list(served.model.model.deep.hidden.widths)


def test_neumf_mlp_is_shaped_and_its_model_loads(tmp_path: Path) -> None:
    # the leanrec controller on NeuMF's MLP: every method and variant that learns saves its
    # model at its own λ; the file loads through load_model and predicts with the reached widths
    stream = tiny_stream()
    experiment = tiny_experiment(
        tmp_path / "run", 0, model="neumf", leanrec_lambda_grid=(0.0, 0.02),
        methods=("fixed_small", "adaptive_leanrec", "adaptive_leanrec_freeze"),
    )  # fmt: skip
    result = run_experiment(experiment, log=lambda _: None, stream=stream)
    rows = {r["method"]: r for r in result.rows}
    assert set(rows) == {"fixed_small", "adaptive_leanrec", "adaptive_leanrec_freeze"}
    # NeuMF's MLP reads 2·16 = 32 inputs: 32·64 + 64 + 64·32 + 32 + 32 (output's MLP columns)
    assert rows["fixed_small"]["sessions"][0]["parameters"] == 2048 + 64 + 2048 + 32 + 32
    assert rows["adaptive_leanrec_freeze"]["penalty"] == rows["adaptive_leanrec"]["penalty"]
    served = load_model(result.artifacts["model_adaptive_leanrec"]).stream
    assert served is not None
    assert list(served.model.model.mlp.widths) == rows["adaptive_leanrec"]["end_widths"]
    probability = served.predict({"user": stream.user_raw[-20:].tolist(),
                                  "item": stream.item_raw[-20:].tolist()})  # fmt: skip
    assert probability.shape == (20,) and np.all((probability > 0) & (probability < 1))


def test_week_sessions_are_calendar_weeks() -> None:
    stream = make_synthetic_stream(2000, n_users=50, n_items=40, seconds_per_event=3000, seed=0)
    experiment = AdaptiveExperiment(session_by="week", warmup_sessions=2, chunk_size=100)
    warmup = stream.warmup_size(0.2)
    sessions, plan = session_plan(experiment, stream, warmup, evaluated=True)
    weeks = [s for s in sessions if not s.warmup]
    week_of = (stream.time - 4 * 86_400) // (7 * 86_400)
    assert weeks[0].start == warmup and weeks[-1].stop == len(stream)
    for session in weeks:
        assert len(set(week_of[session.start : session.stop].tolist())) == 1
    assert len({week_of[s.start] for s in weeks}) == len(weeks)
    assert plan[-1].stop == len(stream)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"model": "lightgcn"}, "deep tower"),
        ({"lambda_grid": (-0.1,)}, "lambda_grid"),
        ({"session_by": "month"}, "session_by"),
        ({"warmup_sessions": 1}, "warmup_sessions"),
    ],
)
def test_bad_settings_are_refused(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        AdaptiveExperiment(**changes)  # type: ignore[arg-type]


def test_initial_widths_outside_the_limits_are_refused() -> None:
    with pytest.raises(ValueError, match=r"initial_widths \(600,\): widths must be in 16..512"):
        AdaptiveConfig(initial_widths=(600,))
    with pytest.raises(ValueError, match=r"depth must be in 1\.\.3"):
        AdaptiveConfig(initial_widths=(64, 64, 64, 64))


def test_a_rerun_with_other_settings_is_refused_before_writing(tmp_path: Path) -> None:
    stream = tiny_stream()
    experiment = tiny_experiment(tmp_path / "run", 0, methods=("fixed_small",))
    run_experiment(experiment, log=lambda _: None, stream=stream)
    rows = (tmp_path / "run" / "rows.json").read_text()
    config = (tmp_path / "run" / "config.json").read_text()
    changed = tiny_experiment(tmp_path / "run", 0, methods=("fixed_small",), chunk_size=100)
    with pytest.raises(ValueError, match="chunk_size 200 -> 100"):
        run_experiment(changed, log=lambda _: None, stream=stream)
    assert (tmp_path / "run" / "rows.json").read_text() == rows
    assert (tmp_path / "run" / "config.json").read_text() == config
    more = tiny_experiment(tmp_path / "run", 0, methods=("fixed_small", "fixed_medium"))
    result = run_experiment(more, log=lambda _: None, stream=stream)  # adds a method: resumes
    assert [r["method"] for r in result.rows] == ["fixed_small", "fixed_medium"]
