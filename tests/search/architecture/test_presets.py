"""AMEIR presets: ``paper`` (all three steps, no FM term, the paper's readout, 4 cycles keeping
50) and ``leanrec`` (the defaults), each of leanrec's additions a switch that turns off alone,
the preset kept in a run directory's config, and an explicit option set over a preset's
value."""

from __future__ import annotations

import dataclasses
import json
from types import SimpleNamespace
from typing import Any

import pytest

from leanrec import cli
from leanrec.options import build_config
from leanrec.runner.rundir import RunDirectory
from leanrec.search.architecture.config import (
    LEANREC_ADDITIONS,
    RETRIEVAL_ADDITIONS,
    ArchitectureExperiment,
    ArchitectureSearchConfig,
    RetrievalSearchConfig,
    additions_on,
    apply_preset,
    preset_label,
)
from leanrec.search.architecture.policy import search_architecture
from tests.search.architecture.test_search import split, tiny_config  # noqa: F401 (fixture)

PAPER = dict(
    behavior_blocks=3, fm_shortcut=False, readout=("sum", "last", "attention"),
    evolution_cycles=4, keep_per_cycle=50, carry_embeddings=False, keep_best_one_shot=False,
    largest_child_share=0.0, one_shot_schedule="cosine", keep_inherited=False,
)  # fmt: skip
"""The paper's values, from its text: L_a = 3, the backbone without the FM term, ``h^a = [sum
pooling, last state, target attention]``, 4 cycles keeping the top 50, a single cosine
schedule, children sampled uniformly ("fairness"), and the rest leanrec's additions off."""
LEANREC = dict(
    fm_shortcut=True, readout=("mean",), evolution_cycles=3, keep_per_cycle=20,
    carry_embeddings=True, keep_best_one_shot=True, largest_child_share=0.5,
    one_shot_schedule="constant", keep_inherited=True,
)  # fmt: skip


def _changed(a: Any, b: Any) -> set[str]:
    """Names of the fields whose values differ (the ``preset`` label left out)."""
    left, right = dataclasses.asdict(a), dataclasses.asdict(b)
    return {k for k in left if k != "preset" and left[k] != right[k]}


def test_each_preset_resolves_to_the_stated_settings() -> None:
    given = ArchitectureSearchConfig(supernet_epochs=6, sampled_children=50, behavior_blocks=0)
    paper = apply_preset(given, "paper")
    leanrec = apply_preset(given, "leanrec")
    assert {k: getattr(paper, k) for k in PAPER} == PAPER
    assert {k: getattr(leanrec, k) for k in LEANREC} == LEANREC
    assert leanrec.behavior_blocks == 0  # leanrec leaves Step 1 as given; paper searches it
    for config, name in ((paper, "paper"), (leanrec, "leanrec")):
        assert config.preset == name and preset_label(config) == name
        assert (config.supernet_epochs, config.sampled_children) == (6, 50)  # budgets kept
    # the defaults are leanrec's
    assert (
        _changed(ArchitectureSearchConfig(), apply_preset(ArchitectureSearchConfig(), "leanrec"))
        == set()
    )
    assert preset_label(ArchitectureSearchConfig()) == "leanrec"
    assert additions_on(paper) == [] and additions_on(leanrec) == list(LEANREC_ADDITIONS)
    with pytest.raises(ValueError, match="unknown preset"):
        ArchitectureSearchConfig(preset="fast")
    with pytest.raises(ValueError, match="unknown additions"):
        apply_preset(given, "leanrec", without=("screen",))
    # the next-item search: the blocks alone, L_a = 3
    retrieval = apply_preset(RetrievalSearchConfig(), "paper")
    assert (retrieval.positions, retrieval.final_norm, retrieval.input_dropout) == (False, False, 0)
    assert retrieval.n_blocks == 3 and preset_label(retrieval) == "paper"
    assert preset_label(RetrievalSearchConfig()) == "leanrec"


@pytest.mark.parametrize("addition", list(LEANREC_ADDITIONS))
def test_each_addition_turns_off_alone(addition: str) -> None:
    leanrec = apply_preset(ArchitectureSearchConfig(), "leanrec")
    without = apply_preset(ArchitectureSearchConfig(), "leanrec", without=(addition,))
    assert _changed(leanrec, without) == set(LEANREC_ADDITIONS[addition])
    assert {k: getattr(without, k) for k in LEANREC_ADDITIONS[addition]} == {
        k: PAPER[k] for k in LEANREC_ADDITIONS[addition]
    }
    assert preset_label(without) == f"leanrec without {addition}"
    everything = apply_preset(
        ArchitectureSearchConfig(), "leanrec", without=tuple(LEANREC_ADDITIONS)
    )
    assert _changed(everything, apply_preset(ArchitectureSearchConfig(), "paper")) == set()


@pytest.mark.parametrize("addition", list(RETRIEVAL_ADDITIONS))
def test_each_retrieval_addition_turns_off_alone(addition: str) -> None:
    leanrec = apply_preset(RetrievalSearchConfig(), "leanrec")
    without = apply_preset(RetrievalSearchConfig(), "leanrec", without=(addition,))
    assert _changed(leanrec, without) == set(RETRIEVAL_ADDITIONS[addition])


def test_the_paper_preset_searches_all_three_steps_as_the_paper_does(split, tmp_path) -> None:  # noqa: F811
    budgets = tiny_config()  # tiny budgets; the preset's own fields as the paper's
    config = apply_preset(budgets, "paper")
    result = search_architecture(split, config, tmp_path / "run")
    arch = result.architecture
    assert len(arch.blocks) == 3  # Step 1 searched, L_a = 3
    assert arch.readout == ("sum", "last", "attention") and arch.fm_shortcut is False
    assert result.model.behavior.readout_layer.parts == ("sum", "last", "attention")
    step2 = json.loads((tmp_path / "run" / "step2.json").read_text())
    assert len(step2["cycles"]) == 4
    orders = [max(len(i) for i in cycle["kept"]) for cycle in step2["cycles"]]
    assert orders == [2, 3, 4, 5]  # cycle c reaches order c + 1
    assert all(len(cycle["kept"]) <= 50 for cycle in step2["cycles"])


def test_an_explicit_option_is_set_over_the_preset(monkeypatch) -> None:
    seen: list[Any] = []

    def capture(run: Any, experiment: Any) -> Any:
        seen.append(experiment)
        return SimpleNamespace(rows=[{}], summary={"methods": ["ameir"]})

    monkeypatch.setattr(cli, "_run_table", capture)
    argv = ["experiment", "architecture", "--dataset", "ml-1m-ctr", "--seeds", "0"]
    assert cli.main([*argv, "--preset", "paper", "--behavior_blocks", "0"]) == 0
    config = seen[-1].config
    assert config.behavior_blocks == 0 and config.fm_shortcut is False  # option, then preset
    assert preset_label(config) == "paper with behavior_blocks=0"
    assert cli.main([*argv, "--preset", "leanrec", "--without", "fm_term", "keep_best"]) == 0
    assert seen[-1].config == apply_preset(
        ArchitectureSearchConfig(), "leanrec", without=("fm_term", "keep_best")
    )
    assert cli.main([*argv, "--fm_shortcut", "false"]) == 0  # no preset: the defaults
    assert seen[-1].config == ArchitectureSearchConfig(fm_shortcut=False)
    assert cli.main([*argv, "--without", "fm_term"]) == 2  # needs --preset
    assert cli.main(["experiment", "architecture", "--dataset", "beauty", "--preset", "paper"]) == 0
    assert seen[-1].config == apply_preset(RetrievalSearchConfig(), "paper")


def test_the_preset_survives_the_run_config(tmp_path) -> None:
    config = apply_preset(ArchitectureSearchConfig(supernet_epochs=6), "paper", behavior_blocks=2)
    experiment = ArchitectureExperiment(out_dir=str(tmp_path / "run"), config=config)
    RunDirectory(experiment.out_dir, config=experiment, log=None)
    saved = json.loads((tmp_path / "run" / "config.json").read_text())["config"]
    rebuilt = build_config(ArchitectureSearchConfig, saved)
    assert rebuilt == config and rebuilt.preset == "paper"
    assert preset_label(rebuilt) == preset_label(config) == "paper with behavior_blocks=2"
    # a resumed run writes the same config again
    RunDirectory(experiment.out_dir, config=dataclasses.replace(experiment, config=rebuilt))
    again = json.loads((tmp_path / "run" / "config.json").read_text())["config"]
    assert again == saved
