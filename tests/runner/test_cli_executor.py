"""``leanrec experiment --executor``: routed to the search config that runs the jobs; an
unknown executor is refused."""

from __future__ import annotations

import argparse

import pytest

from leanrec.cli import _executor_options, main, make_parser
from leanrec.options import build_configs
from leanrec.search.embedding_size import CIESSConfig


def _args(*argv: str) -> argparse.Namespace:
    args, _ = make_parser().parse_known_args(["experiment", *argv])
    return args


def test_executor_flags_become_options_of_the_search_config() -> None:
    options = _executor_options(
        _args("embedding-size", "--executor", "ray", "--executor-cpus-per-job", "2")
    )
    assert options == ["--executor", "ray", "--executor_cpus_per_job", "2.0"]
    (config,) = build_configs({"executor": "ray", "executor_cpus_per_job": 2.0}, [CIESSConfig])
    assert (config.executor, config.executor_cpus_per_job) == ("ray", 2.0)
    assert _executor_options(_args("architecture", "--executor", "serial")) == [
        "--executor",
        "serial",
    ]
    assert _executor_options(_args("sketch", "--executor", "ray")) == []  # read from args
    assert _executor_options(_args("embedding-size")) == []


def test_every_experiment_routes_the_executor_and_an_unknown_one_is_refused(
    capsys: pytest.CaptureFixture[str],
) -> None:
    for capability in ("shared-embedding", "adaptive"):
        assert _executor_options(_args(capability, "--executor", "ray")) == ["--executor", "ray"]
    assert main(["experiment", "sketch", "--executor", "dask", "--seeds", "0"]) == 2
    assert "executor 'dask'" in capsys.readouterr().err  # the config names the choices
