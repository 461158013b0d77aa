"""The space file of ``leanrec tune``: what it reads, and every mistake named with its file and
line."""

from __future__ import annotations

from pathlib import Path

import pytest

from leanrec.data.errors import DataError
from leanrec.models.mf import MFConfig
from leanrec.train.bpr import TrainerConfig
from leanrec.tune.space import read_space

pytest.importorskip("yaml", reason="the space file is YAML (PyYAML comes with the ray extra)")


def _space(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "space.yaml"
    path.write_text(text)
    return path


def test_a_space_reads_each_option_with_its_line_and_config(tmp_path: Path) -> None:
    path = _space(
        tmp_path,
        "# MF on ML-100K\n"
        "lr: {loguniform: [1.0e-4, 0.05]}\n"
        "embedding_dim: {choice: [32, 64]}\n"
        "\n"
        "n_negatives: {randint: [1, 8]}\n"
        "batch_size: 4096\n"
        "lr_decay: {uniform: [0.3, 1.0]}\n",
    )
    space = read_space(path, TrainerConfig, MFConfig)
    got = [(d.option, d.kind, d.values, d.line) for d in space.dimensions]
    assert got == [
        ("learning_rate", "loguniform", (1e-4, 0.05), 2),  # the alias resolved
        ("embedding_dim", "choice", (32, 64), 3),
        ("n_negatives", "randint", (1, 8), 5),
        ("batch_size", "fixed", (4096,), 6),
        ("lr_decay", "uniform", (0.3, 1.0), 7),
    ]
    assert space.trainer_options == ("learning_rate", "n_negatives", "batch_size", "lr_decay")
    assert space.model_options == ("embedding_dim",)
    trainer, model = space.split({"learning_rate": 0.01, "embedding_dim": 32, "batch_size": 4096})
    assert trainer == {"learning_rate": 0.01, "batch_size": 4096}
    assert model == {"embedding_dim": 32}


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("lr: {loguniform: [1.0e-4, 0.05]}\nlearning_rte: 0.1\n", 2, "'learning_rte'"),
        ("lr: {uniform: [0.05, 0.01]}\n", 1, "bad range [0.05, 0.01]"),
        ("l2: {uniform: [0.1, 0.1]}\n", 1, "bad range [0.1, 0.1]"),
        ("\nl2: {loguniform: [0.0, 0.1]}\n", 2, "loguniform needs a positive lower bound"),
        ("n_negatives: {randint: [1, 2.5]}\n", 1, "randint bounds must be integers"),
        ("l2: {uniform: [0.1]}\n", 1, "uniform needs [low, high], two numbers"),
        ("l2: {uniform: [a, b]}\n", 1, "uniform needs [low, high], two numbers"),
        ("l2: {normal: [0, 1]}\n", 1, "unknown distribution 'normal'"),
        ("l2: {uniform: [0, 1], choice: [1]}\n", 1, "give one distribution"),
        ("embedding_dim: {choice: []}\n", 1, "choice needs a non-empty list"),
        ("lr: {uniform: [-0.1, 0.1]}\n", 1, "value -0.1 is refused"),
        ("embedding_dim: {choice: [32, zero]}\n", 1, "value 'zero' is refused"),
        ("lr: 0.1\nbatch_size: 128\nlearning_rate: 0.2\n", 3, "given twice (first on line 1)"),
        ("- lr\n- l2\n", 1, "expected a mapping of options"),
        ("lr: {uniform: [0.1, 0.2]\nl2: 3\n", 2, "not valid YAML"),
    ],
)
def test_mistakes_name_the_file_and_the_line(
    tmp_path: Path, text: str, line: int, message: str
) -> None:
    path = _space(tmp_path, text)
    with pytest.raises(DataError) as caught:
        read_space(path, TrainerConfig, MFConfig)
    assert caught.value.path == path and caught.value.line == line
    assert f"{path}, line {line}: " in str(caught.value)
    assert message in str(caught.value)


def test_an_unknown_option_suggests_the_close_ones(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="learning_rate") as caught:
        read_space(_space(tmp_path, "learning_rte: 0.1\n"), TrainerConfig, MFConfig)
    assert caught.value.line == 1


def test_a_missing_or_empty_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="missing file"):
        read_space(tmp_path / "none.yaml", TrainerConfig, MFConfig)
    with pytest.raises(DataError, match="empty space file"):
        read_space(_space(tmp_path, "# nothing\n"), TrainerConfig, MFConfig)
