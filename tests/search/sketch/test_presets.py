"""DiPS presets: ``paper`` (the model-free scorer of the paper) and ``leanrec`` (the Beauty
headline's policy), each of leanrec's additions a switch that turns off alone, the preset kept
through a run directory, and an explicit option set over a preset's value."""

from __future__ import annotations

import dataclasses
import json
from types import SimpleNamespace
from typing import Any

import pytest

from leanrec import cli
from leanrec.options import build_config
from leanrec.search.sketch import METHODS, SketchConfig, SketchExperiment, run_experiment
from leanrec.search.sketch.config import (
    LEANREC_ADDITIONS,
    PRESETS,
    additions_on,
    apply_preset,
    preset_label,
)
from tests.search.sketch.test_sketch import _synthetic_streams


def _changed(a: SketchConfig, b: SketchConfig) -> set[str]:
    """Names of the fields whose values differ (the ``preset`` label left out)."""
    left, right = dataclasses.asdict(a), dataclasses.asdict(b)
    return {k for k in left if k != "preset" and left[k] != right[k]}


def test_each_preset_resolves_to_the_stated_settings() -> None:
    given = SketchConfig(learning_rate=5e-3, batch_users=64, epochs=2)
    paper = apply_preset(given, "paper")
    leanrec = apply_preset(given, "leanrec")
    stated = {
        "paper": dict(model_state_features=False, recency_prior=0.0, queue_size=50,
                      steps_per_update=1),
        "leanrec": dict(model_state_features=True, recency_prior=1.0, queue_size=50,
                        steps_per_update=1),
    }  # fmt: skip
    for config, name in ((paper, "paper"), (leanrec, "leanrec")):
        assert {k: getattr(config, k) for k in stated[name]} == stated[name]
        assert config.preset == name and preset_label(config) == name
        # the data's settings are kept as given
        assert (config.learning_rate, config.batch_users, config.epochs) == (5e-3, 64, 2)
    assert additions_on(paper) == []
    assert additions_on(leanrec) == ["influence_start", "recency_prior"]
    # the two presets differ in leanrec's additions and in nothing else
    assert _changed(paper, leanrec) == {"model_state_features", "recency_prior"}
    # the defaults are neither: the model-free scorer with an update every 4 steps
    assert preset_label(SketchConfig()) == "paper with steps_per_update=4"
    with pytest.raises(ValueError, match="unknown preset"):
        apply_preset(given, "ciess")
    with pytest.raises(ValueError, match="unknown preset"):
        SketchConfig(preset="fast")
    with pytest.raises(ValueError, match="unknown additions"):
        apply_preset(given, "leanrec", without=("queue",))


@pytest.mark.parametrize("addition", list(LEANREC_ADDITIONS))
def test_each_addition_turns_off_alone(addition: str) -> None:
    leanrec = apply_preset(SketchConfig(), "leanrec")
    without = apply_preset(SketchConfig(), "leanrec", without=(addition,))
    assert _changed(leanrec, without) == set(LEANREC_ADDITIONS[addition])
    assert additions_on(without) == [a for a in LEANREC_ADDITIONS if a != addition]
    # and the policy built from it loses exactly that part
    full = METHODS["dips"].new_scorer(20, False, leanrec)
    cut = METHODS["dips"].new_scorer(20, False, without)
    assert full is not None and cut is not None
    assert full.state_skip is not None and full.recency_skip is not None
    assert float(full.recency_skip.detach()) == -1.0  # -β with β = 1
    if addition == "influence_start":
        assert cut.state_features == 0 and cut.state_skip is None
        assert cut.recency_skip is not None and float(cut.recency_skip.detach()) == -1.0
    else:
        assert cut.recency_skip is None
        assert cut.state_features == full.state_features == 2
        assert cut.state_skip is not None
        assert cut.state_skip.weight.tolist() == full.state_skip.weight.tolist() == [[0.0, 1.0]]
    paper = METHODS["dips"].new_scorer(20, False, apply_preset(SketchConfig(), "paper"))
    assert paper is not None and paper.state_skip is None and paper.recency_skip is None


def test_an_explicit_option_is_set_over_the_preset(monkeypatch) -> None:
    seen: list[Any] = []

    def capture(run: Any, experiment: Any) -> Any:
        seen.append(experiment)
        return SimpleNamespace(rows=[{}], summary={"methods": ["dips"]})

    monkeypatch.setattr(cli, "_run_table", capture)
    argv = ["experiment", "sketch", "--seeds", "0", "--methods", "dips"]
    assert cli.main([*argv, "--preset", "leanrec", "--recency_prior", "2"]) == 0
    config = seen[-1].config
    assert config.recency_prior == 2.0  # the option beats the preset's β = 1
    assert config.model_state_features is True and config.steps_per_update == 1  # the preset's
    assert preset_label(config) == "leanrec with recency_prior=2.0"
    assert cli.main([*argv, "--preset", "paper"]) == 0
    assert seen[-1].config == apply_preset(SketchConfig(), "paper")
    assert cli.main([*argv, "--preset", "leanrec", "--without", "recency_prior"]) == 0
    assert seen[-1].config == apply_preset(SketchConfig(), "leanrec", without=("recency_prior",))
    assert cli.main(argv) == 0
    assert seen[-1].config == SketchConfig()  # no preset: the defaults
    assert cli.main([*argv, "--without", "recency_prior"]) == 2  # needs --preset


def test_the_preset_survives_a_run_directory_and_its_resume(tmp_path) -> None:
    config = apply_preset(SketchConfig(epochs=1, batch_users=16), "paper", queue_size=2)
    exp = SketchExperiment(
        dataset="synthetic",
        out_dir=str(tmp_path / "run"),
        methods=("random",),
        sketch_sizes=(2,),
        update_periods=(1,),
        seeds=(0,),
        config=config,
    )
    streams = _synthetic_streams()
    first = run_experiment(exp, log=lambda _: None, streams=streams)
    assert first.summary["preset"] == "paper with queue_size=2"
    saved = json.loads((tmp_path / "run" / "config.json").read_text())["config"]
    rebuilt = build_config(SketchConfig, saved)
    assert rebuilt == config and rebuilt.preset == "paper"
    again = run_experiment(dataclasses.replace(exp, config=rebuilt), streams=streams)
    assert again.summary["preset"] == first.summary["preset"]
    assert again.rows == first.rows
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["preset"] == "paper with queue_size=2"
    assert results["config"]["config"]["preset"] == "paper"
    assert PRESETS["paper"]["queue_size"] == 50  # the option above was set over it
