"""``leanrec experiment --executor``: routed to the search config that runs the jobs, refused
where an experiment runs in this process only."""

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


def test_an_experiment_without_jobs_refuses_the_executor(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["experiment", "adaptive", "--executor", "ray"]) == 2
    assert "runs in this process" in capsys.readouterr().err
    assert main(["experiment", "sketch", "--executor", "dask", "--seeds", "0"]) == 2
    assert "executor 'dask'" in capsys.readouterr().err  # the config names the choices
