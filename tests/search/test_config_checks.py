"""Settings no run can use are refused when the configuration is built, naming the field and
the value, instead of running to an empty table, a misleading figure or a torch error."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from leanrec.api import TrainConfig
from leanrec.data.own import DataFile
from leanrec.search.adaptive import AdaptiveExperiment
from leanrec.search.architecture.config import ArchitectureExperiment, RetrievalExperiment
from leanrec.search.embedding_size.config import CIESSConfig, PEPConfig
from leanrec.search.shared_embedding import SharedEmbeddingExperiment
from leanrec.search.sketch import SketchConfig, SketchExperiment
from leanrec.search.sketch.config import apply_preset as apply_sketch_preset
from leanrec.train.bpr import TrainerConfig

CASES: list[tuple[Callable[[], Any], str]] = [
    # a search of no episode, or keeping no mask, reported "not reached" against the budget
    (lambda: CIESSConfig(episodes=0), "episodes must be at least 1, got 0"),
    (lambda: CIESSConfig(top_masks=0), "top_masks must be at least 1, got 0"),
    (lambda: CIESSConfig(max_dim=0), "max_dim must be at least 1, got 0"),
    (lambda: CIESSConfig(noise_sigma=-1.0), "noise_sigma must be at least 0, got -1.0"),
    (lambda: PEPConfig(batch_size=0), "batch_size must be at least 1, got 0"),
    # NaN passed every comparison, then the trainer blamed the learning rate
    (lambda: TrainerConfig(l2=math.nan), "l2 must be at least 0, got nan"),
    # a reversed scale scored RMSE 2.72 against 0.98
    (lambda: SketchConfig(rating_scale=(5.0, 1.0)), r"rating_scale must be .* got \(5\.0, 1\.0\)"),
    (lambda: SketchExperiment(split_ratios=(0.5, 0.5, 0.5)), "summing to 1"),
    (lambda: SketchExperiment(split_ratios=(0.8, 0.2, 0.0)), r"in \(0, 1\)"),
    # no seed: an empty table and no error
    (lambda: SketchExperiment(seeds=()), r"seeds must hold at least one value, got \(\)"),
    (lambda: SketchExperiment(sketch_sizes=()), "sketch_sizes must hold at least one value"),
    (lambda: SharedEmbeddingExperiment(seeds=()), "seeds must hold at least one value"),
    (lambda: ArchitectureExperiment(seeds=()), "seeds must hold at least one value"),
    (lambda: RetrievalExperiment(seeds=()), "seeds must hold at least one value"),
    (lambda: AdaptiveExperiment(seeds=()), "seeds must hold at least one value"),
    # NaN reached a bare assert, infinity a torch probability error
    (lambda: AdaptiveExperiment(lambda_grid=(math.nan,)), "lambda_grid must hold finite"),
    (lambda: AdaptiveExperiment(lambda_grid=(0.1, math.inf)), "lambda_grid must hold finite"),
    (lambda: DataFile("x.csv", user_col="id", item_col="id"), "name one column twice"),
    (lambda: DataFile("x.csv", sep=", "), "sep must be one character"),
    (lambda: TrainConfig(seed=-1), "seed must be at least 0, got -1"),
    (lambda: TrainerConfig(seed=-1), "seed must be at least 0, got -1"),
    # the paper preset has no addition: a without= there did nothing
    (lambda: apply_sketch_preset(SketchConfig(), "paper", ("recency_prior",)), "paper preset"),
]


@pytest.mark.parametrize(("build", "message"), CASES)
def test_a_setting_no_run_can_use_is_refused_by_name(
    build: Callable[[], Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        build()


def test_one_name_may_be_a_string_not_its_letters() -> None:
    from leanrec.search.embedding_size import EmbeddingSizeExperiment, apply_preset
    from leanrec.search.sketch.baselines import METHODS

    one = apply_preset(EmbeddingSizeExperiment(), "leanrec", "screen")  # type: ignore[arg-type]
    assert one == apply_preset(EmbeddingSizeExperiment(), "leanrec", ("screen",))
    assert [m.name for m in METHODS.resolve("random")] == ["random"]  # type: ignore[arg-type]
    # a loop over an experiment's methods takes the name, not its letters
    assert SketchExperiment(methods="random").methods == ("random",)  # type: ignore[arg-type]
    assert AdaptiveExperiment(methods="fixed_small").methods == ("fixed_small",)  # type: ignore[arg-type]
    assert SharedEmbeddingExperiment(methods="autoassign").methods == ("autoassign",)  # type: ignore[arg-type]
    arch = ArchitectureExperiment(baselines="dnn", methods="ameir")  # type: ignore[arg-type]
    assert (arch.baselines, arch.methods) == (("dnn",), ("ameir",))
    assert EmbeddingSizeExperiment(methods="su").methods == ("su",)  # type: ignore[arg-type]


def test_a_model_is_not_saved_over_a_folder_or_as_safetensors(tmp_path: Path) -> None:
    from leanrec.data.synthetic import make_synthetic
    from leanrec.models import build_model

    data = make_synthetic(n_users=20, n_items=15, n_interactions=120, seed=0)
    model = build_model("mf", data, {}, seed=0)
    with pytest.raises(ValueError, match="is a folder: give the model's file name"):
        model.save(tmp_path)
    with pytest.raises(ValueError, match="written by leanrec compress"):
        model.save(tmp_path / "m.safetensors")
    assert model.save(tmp_path / "m.pt").is_file()


def test_the_defaults_and_the_edges_still_pass() -> None:
    CIESSConfig(noise_sigma=0.0, reward_lambda=0.0, top_masks=1)
    SketchConfig(rating_scale=(0.0, 1.0))
    SketchExperiment(split_ratios=(0.7, 0.2, 0.1), seeds=(4,))
    AdaptiveExperiment(lambda_grid=(0.0,))
    DataFile("x.csv", user_col="u", item_col="i", rating_col="r", time_col="t")


def test_a_file_name_given_as_a_dataset_points_to_data_file() -> None:
    from leanrec.data.errors import DataError
    from leanrec.data.registry import load_dataset

    with pytest.raises(DataError, match=r"unknown dataset 'ratings\.csv'.*DataFile\('ratings"):
        load_dataset("ratings.csv")
    with pytest.raises(DataError) as error:
        load_dataset("ml-2m")
    assert "DataFile" not in str(error.value)  # a misspelt name is not sent to files
