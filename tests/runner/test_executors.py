"""Tests for leanrec.runner executors and progress bars."""

from __future__ import annotations

import functools
import time

import pytest

from leanrec.runner import (
    RayExecutor,
    SerialExecutor,
    make_executor,
    progress,
    progress_enabled,
)


def _square(x: int) -> int:
    return x * x


def test_serial_map_calls_each_job_once_in_order_and_keeps_job_order() -> None:
    seen: list[int] = []

    def record(job: int) -> int:
        seen.append(job)
        return _square(job)

    assert SerialExecutor(show_progress=False).map(record, [3, 1, 2, 0]) == [9, 1, 4, 0]
    assert seen == [3, 1, 2, 0]
    assert SerialExecutor().map(_square, []) == []


def test_serial_map_raises_job_error() -> None:
    def fail_on_two(x: int) -> int:
        if x == 2:
            raise RuntimeError("job 2 failed")
        return x

    with pytest.raises(RuntimeError, match="job 2 failed"):
        SerialExecutor().map(fail_on_two, [1, 2, 3])


def test_make_executor() -> None:
    assert isinstance(make_executor(), SerialExecutor)
    assert isinstance(make_executor("serial", show_progress=False), SerialExecutor)
    ray_executor = make_executor("ray", num_cpus_per_job=2)  # builds without importing ray
    assert isinstance(ray_executor, RayExecutor)
    assert ray_executor.num_cpus_per_job == 2
    with pytest.raises(ValueError, match="serial, ray"):
        make_executor("dask")


def test_ray_executor_honours_ray_address(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAY_ADDRESS", "10.1.2.3:6379")
    assert "10.1.2.3:6379" in repr(RayExecutor())
    assert "auto" in repr(RayExecutor(address="auto"))
    monkeypatch.delenv("RAY_ADDRESS")
    assert "address=None" in repr(RayExecutor())


def test_progress_enabled_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEANREC_PROGRESS", "1")
    assert progress_enabled() is True
    assert progress_enabled(False) is False
    monkeypatch.setenv("LEANREC_PROGRESS", "0")
    assert progress_enabled() is False
    assert progress_enabled(True) is True
    assert list(progress(range(3), desc="x")) == [0, 1, 2]


@pytest.mark.ray
def test_ray_executor_smoke(monkeypatch: pytest.MonkeyPatch) -> None:
    ray = pytest.importorskip("ray")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    if ray.is_initialized():
        ray.shutdown()
    start = time.perf_counter()
    executor = RayExecutor(
        num_cpus_per_job=1, num_cpus=1, include_dashboard=False, log_to_driver=False
    )
    try:
        # A partial is not a plain function: checks any picklable callable is accepted.
        assert executor.map(functools.partial(pow, exp=2), [3, 1, 2]) == [9, 1, 4]
        assert executor.map(_square, []) == []
    finally:
        executor.close()
        ray.shutdown()
    assert not ray.is_initialized()
    print(f"ray smoke test: {time.perf_counter() - start:.1f} s")
