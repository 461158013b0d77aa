"""Typed configs from flat options (``leanrec.options``): groups, coercion, names, routing."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pytest

from leanrec.options import (
    Target,
    build_config,
    build_configs,
    check_literals,
    check_value,
    field_types,
    route_options,
)

ALIASES = {"lr": "learning_rate", "epochs": "max_epochs"}


@dataclass
class Schedule:
    warmup: int = 0
    shape: Literal["constant", "cosine"] = "constant"

    def __post_init__(self) -> None:
        check_literals(self)


@dataclass
class Optimiser:
    learning_rate: float = 1e-3
    max_epochs: int = 10
    schedule: Schedule = field(default_factory=Schedule)


@dataclass
class Search:
    widths: tuple[int, ...] = (64, 32)
    scale: tuple[float, float] = (1.0, 5.0)
    ks: list[int] | None = None
    rate: float = 0.5
    budget: int | None = None
    verbose: bool = False
    name: str = "search"
    mode: Literal["exact", "approx"] = "exact"
    modes: tuple[Literal["exact", "approx"], ...] = ("exact",)
    optimiser: Optimiser = field(default_factory=Optimiser)
    retrain: Optimiser = field(default_factory=lambda: Optimiser(max_epochs=3))
    retrain_from_scratch: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        check_literals(self)


@dataclass
class Stream:
    """A config that has an ``epochs`` field of its own: the alias must not hide it."""

    epochs: int = 3
    learning_rate: float = 1e-3


@dataclass
class Model:
    embedding_dim: int = 64
    dropout: float = 0.0
    seed: int = 1


@dataclass
class Experiment:
    dataset: str = "ml-1m"
    baseline_epochs: int = 8
    budget: Literal["seconds", "samples"] = "seconds"
    search: Search = field(default_factory=Search)

    def __post_init__(self) -> None:
        check_literals(self)


# ----------------------------------------------------------------------------- groups
def test_group_prefixes_reach_nested_configs_at_any_depth() -> None:
    config = build_config(
        Search,
        {"optimiser_max_epochs": 5, "retrain_learning_rate": 0.1, "optimiser_schedule_warmup": 2},
    )
    assert config.optimiser == Optimiser(max_epochs=5, schedule=Schedule(warmup=2))
    # the group's own default (max_epochs=3) is what the option overrides, not Optimiser()'s
    assert config.retrain == Optimiser(learning_rate=0.1, max_epochs=3)
    assert config.widths == (64, 32) and config.seed == 0


def test_a_field_named_like_a_group_prefix_is_the_field() -> None:
    config = build_config(Search, {"retrain_from_scratch": True})
    assert config.retrain_from_scratch is True and config.retrain == Optimiser(max_epochs=3)


def test_options_override_a_base_and_its_groups() -> None:
    base = Search(rate=0.9, retrain=Optimiser(learning_rate=0.2, max_epochs=7))
    config = build_config(Search, {"retrain_max_epochs": 1, "seed": 4}, base=base)
    assert config.rate == 0.9 and config.seed == 4
    assert config.retrain == Optimiser(learning_rate=0.2, max_epochs=1)
    assert base.retrain.max_epochs == 7  # the base is left alone


def test_a_group_field_takes_no_plain_value() -> None:
    with pytest.raises(ValueError, match=r"'optimiser' is a group.*optimiser_<field>"):
        build_config(Search, {"optimiser": 3})


# ----------------------------------------------------------------------------- coercion
def test_values_are_coerced_to_the_annotated_types() -> None:
    config = build_config(
        Search,
        {
            "widths": [128, 64.0],  # a list, and an integral float
            "scale": [0, 10],
            "ks": 20,  # a scalar where a list is expected
            "rate": 1,  # an int where a float is expected
            "budget": 1e3,
            "verbose": 1,
            "name": 5,
            "modes": "approx",
        },
    )
    assert config.widths == (128, 64) and all(type(w) is int for w in config.widths)
    assert config.scale == (0.0, 10.0) and all(type(s) is float for s in config.scale)
    assert config.ks == [20]
    assert config.rate == 1.0 and type(config.rate) is float
    assert config.budget == 1000 and type(config.budget) is int
    assert config.verbose is True
    assert config.name == "5"
    assert config.modes == ("approx",)
    assert build_config(Search, {"widths": 16}).widths == (16,)
    assert build_config(Search, {"budget": None, "ks": None}).budget is None


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"seed": 2.5}, "option 'seed' expects int, got 2.5"),
        ({"seed": True}, "option 'seed' expects int, got True"),  # a bare --seed
        ({"rate": "fast"}, "option 'rate' expects float, got 'fast'"),
        ({"verbose": 2}, "option 'verbose' expects bool, got 2"),
        ({"scale": [1, 2, 3]}, r"option 'scale' expects tuple\[float, float\], got \[1, 2, 3\]"),
        ({"budget": "x"}, r"option 'budget' expects int \| None, got 'x'"),
        ({"widths": [1, "a"]}, r"option 'widths' expects tuple\[int, \.\.\.\]"),
    ],
)
def test_a_value_that_does_not_fit_names_the_option(
    options: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        build_config(Search, options)


def test_string_annotations_are_resolved_and_unresolvable_ones_pass_through() -> None:
    # this module uses ``from __future__ import annotations``: every annotation is a string
    assert field_types(Search)["scale"] == tuple[float, float]

    @dataclass
    class Local:
        known: int = 1
        hidden: NameDefinedOnlyForTypeCheckers = None  # type: ignore[name-defined]  # noqa: F821

    types = field_types(Local)
    assert types["known"] is int
    assert build_config(Local, {"known": 2.0, "hidden": [1]}) == Local(2, [1])


# ----------------------------------------------------------------------------- Literal
def test_a_value_outside_a_literal_is_refused_with_the_option_and_the_allowed_values() -> None:
    with pytest.raises(ValueError, match=r"^mode 'fast': expected one of 'exact', 'approx'$"):
        build_config(Search, {"mode": "fast"})
    # nested: the message names the option as given
    with pytest.raises(ValueError, match=r"^optimiser_schedule_shape 'linear': expected one of"):
        build_config(Search, {"optimiser_schedule_shape": "linear"})
    with pytest.raises(ValueError, match=r"^modes 'fast': expected one of 'exact', 'approx'$"):
        build_config(Search, {"modes": ["exact", "fast"]})
    assert build_config(Search, {"mode": "approx"}).mode == "approx"


def test_literals_are_checked_when_a_config_is_built_in_python() -> None:
    with pytest.raises(ValueError, match=r"^mode 'fast': expected one of 'exact', 'approx'$"):
        Search(mode="fast")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^shape 'linear': expected one of 'constant', 'cosine'"):
        Schedule(shape="linear")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="modes 'fast'"):
        Search(modes=("exact", "fast"))  # type: ignore[arg-type]


def test_check_value_checks_a_function_argument_and_optional_literals() -> None:
    check_value("negative_sampling", "uniform", Literal["popularity", "uniform"])
    check_value("order", None, Literal["time", "random"] | None)
    with pytest.raises(ValueError, match="order 'size': expected one of 'time', 'random', None"):
        check_value("order", "size", Literal["time", "random"] | None)
    # True is no 1 (Literal[1]), although True == 1
    with pytest.raises(ValueError, match="level True"):
        check_value("level", True, Literal[1, 2])
    check_value("free", "anything", str)  # not a Literal: not checked


def test_the_package_configs_check_their_literal_fields() -> None:
    from leanrec.search.embedding_size import CIESSConfig, EmbeddingSizeExperiment
    from leanrec.search.embedding_size.baselines import PEPConfig

    with pytest.raises(ValueError, match=r"^noise 'brown': expected one of 'gaussian', 'ou'"):
        CIESSConfig(noise="brown")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^budget_projection 'none': expected one of 'joint'"):
        CIESSConfig(budget_projection="none")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^item_quality 'clicks'"):
        CIESSConfig(item_quality="clicks")  # type: ignore[arg-type]
    with pytest.raises(
        ValueError, match=r"^retrain_from 'best': expected one of 'trained', 'init'"
    ):
        PEPConfig(retrain_from="best")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^pruning_base 'scratch'"):
        EmbeddingSizeExperiment(pruning_base="scratch")  # type: ignore[arg-type]


def test_a_plain_typed_field_of_the_wrong_type_is_refused_when_built_in_python() -> None:
    from leanrec.search.embedding_size.baselines import PEPConfig
    from leanrec.train.bpr import TrainerConfig

    # 8.0 epochs once failed deep in torch (range() of a float); a bool is no count either
    with pytest.raises(ValueError, match=r"^max_epochs must be int, got 8\.0 \(float\)$"):
        PEPConfig(max_epochs=8.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^batch_size must be int, got True \(bool\)$"):
        PEPConfig(batch_size=True)
    with pytest.raises(ValueError, match=r"^learning_rate must be float, got '0\.01' \(str\)$"):
        PEPConfig(learning_rate="0.01")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^warmup must be int, got 1\.5"):
        Schedule(warmup=1.5)  # type: ignore[arg-type]
    # an int is a float, a numpy integer an int, None fits an optional field
    assert PEPConfig(learning_rate=1, max_epochs=np.int64(3)).max_epochs == 3
    assert TrainerConfig(max_epochs=5).max_epochs == 5
    check_value("patience", None, int | None)
    check_value("out_dir", Path("runs/x"), str | None)  # str fields are not checked
    check_value("progress", np.array([1, 2]).all(), bool | None)  # numpy's bool is a bool
    check_value("floor_widths", None, tuple[int, ...] | None)
    with pytest.raises(ValueError, match=r"^floor_widths must be int, got 8\.5"):
        check_value("floor_widths", (16, 8.5), tuple[int, ...] | None)
    with pytest.raises(ValueError, match=r"^progress must be bool \| None, got 'false'"):
        check_value("progress", "false", bool | None)
    with pytest.raises(ValueError, match=r"^eval_ks must be int, got 2\.5"):
        check_value("eval_ks", (10, 2.5), tuple[int, ...])


# ----------------------------------------------------------------------------- names
def test_an_unknown_option_is_named_with_a_close_match_and_the_known_ones() -> None:
    with pytest.raises(ValueError) as error:
        build_config(Search, {"widht": 3}, aliases=ALIASES)
    message = str(error.value)
    assert message.startswith("unknown option 'widht' (did you mean 'widths'?); known: ")
    known = message.split("known: ")[1].split(", ")
    assert "optimiser_schedule_shape" in known and "retrain_max_epochs" in known
    # 11 plain fields of Search, 4 in each Optimiser group (2 of them in its Schedule)
    assert "optimiser" not in known and len(known) == len(set(known)) == 11 + 4 + 4


def test_every_unknown_option_is_named_and_far_names_get_no_guess() -> None:
    with pytest.raises(ValueError, match=r"^unknown options 'zzz', 'optimiser_lr_x' \(did"):
        build_config(Search, {"zzz": 1, "optimiser_lr_x": 2, "seed": 3})


def test_aliases_name_fields_at_every_level_but_never_hide_a_field() -> None:
    config = build_config(Search, {"optimiser_lr": 0.1, "retrain_epochs": 9}, aliases=ALIASES)
    assert config.optimiser.learning_rate == 0.1 and config.retrain.max_epochs == 9
    assert build_config(Optimiser, {"epochs": 4}, aliases=ALIASES).max_epochs == 4
    # Stream has an ``epochs`` field of its own
    assert build_config(Stream, {"epochs": 4, "lr": 0.5}, aliases=ALIASES) == Stream(4, 0.5)
    # an alias whose field is absent is unknown, suggested by its own name
    with pytest.raises(ValueError, match="unknown option 'lr'"):
        build_config(Model, {"lr": 0.1}, aliases=ALIASES)
    with pytest.raises(ValueError, match="options 'lr' and 'learning_rate' both set learning_rate"):
        build_config(Optimiser, {"lr": 0.1, "learning_rate": 0.2}, aliases=ALIASES)


def test_an_alias_is_offered_as_a_suggestion() -> None:
    with pytest.raises(ValueError, match=r"did you mean 'epochs'"):
        build_config(Optimiser, {"epohcs": 3}, aliases=ALIASES)


# ----------------------------------------------------------------------------- routing
def test_options_go_to_the_first_target_with_a_field_for_them() -> None:
    trainer, model = route_options(
        {"lr": 0.1, "epochs": 2, "embedding_dim": 8, "seed": 5, "dropout": 0},
        [Optimiser, Model],
        ALIASES,
    )
    assert trainer == {"learning_rate": 0.1, "max_epochs": 2}
    assert model == {"embedding_dim": 8, "seed": 5, "dropout": 0}  # values not coerced yet
    both = route_options({"seed": 5}, [Search, Model])
    assert both == [{"seed": 5}, {}]


def test_routing_builds_each_target_on_its_base_and_respects_only() -> None:
    base = Experiment(dataset="beauty")
    experiment, search = build_configs(
        {"baseline_epochs": 2.0, "budget": "samples", "seed": 3, "optimiser_epochs": 4},
        [Target(Experiment, base, only=("baseline_epochs", "budget")), Search],
        ALIASES,
    )
    assert experiment == Experiment(dataset="beauty", baseline_epochs=2, budget="samples")
    assert search == Search(seed=3, optimiser=Optimiser(max_epochs=4))
    # ``dataset`` is a field of the experiment, but not one this target takes from options
    with pytest.raises(ValueError) as error:
        build_configs({"dataset": "x"}, [Target(Experiment, only=("budget",)), Model])
    message = str(error.value)
    assert message.startswith("unknown option 'dataset'; known: ")
    assert message.split("known: ")[1].split(", ") == ["budget", "dropout", "embedding_dim", "seed"]
    with pytest.raises(ValueError, match=r"^budget 'flops': expected one of 'seconds', 'samples'"):
        build_configs({"budget": "flops"}, [Target(Experiment, only=("budget",))])
