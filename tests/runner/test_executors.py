"""Tests for leanrec.runner executors and progress bars."""

from __future__ import annotations

import functools
import json
import os
import time

import pytest

from leanrec.runner import (
    JOB_LOG_ENV,
    RayExecutor,
    SerialExecutor,
    make_executor,
    progress,
    progress_enabled,
    search_executor,
)
from leanrec.runner.executors import LOCAL_NODE, InProcess, is_loopback


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


def test_serial_map_reports_results_in_job_order_and_records_each_job(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "jobs.jsonl"
    monkeypatch.setenv(JOB_LOG_ENV, str(log))
    reported: list[tuple[int, int]] = []
    executor = SerialExecutor(show_progress=False, desc="squares")
    results = executor.map(_square, [3, 1, 2], on_result=lambda i, r: reported.append((i, r)))
    assert results == [9, 1, 4]
    assert reported == [(0, 9), (1, 1), (2, 4)]
    assert [(r.desc, r.index, r.node_id) for r in executor.records] == [
        ("squares", 0, LOCAL_NODE),
        ("squares", 1, LOCAL_NODE),
        ("squares", 2, LOCAL_NODE),
    ]
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [line["index"] for line in lines] == [0, 1, 2]
    assert {line["pid"] for line in lines} == {os.getpid()}


def test_serial_share_is_the_value_itself() -> None:
    value = {"a": [1, 2]}
    shared = SerialExecutor().share(value)
    assert isinstance(shared, InProcess) and shared.get() is value


def test_search_executor_names_the_kind() -> None:
    assert isinstance(search_executor("serial"), SerialExecutor)
    ray_executor = search_executor("ray", 0.5, desc="masks")
    assert isinstance(ray_executor, RayExecutor)
    assert (ray_executor.num_cpus_per_job, ray_executor.desc) == (0.5, "masks")
    assert ray_executor.show_progress is False
    with pytest.raises(ValueError, match="unknown executor kind 'threads'"):
        search_executor("threads")


def test_loopback_addresses_are_read_from_the_text() -> None:
    for address in ("127.0.0.1:6379", "localhost:1", "ray://127.0.0.2:10001", "[::1]:6379"):
        assert is_loopback(address), address
    for address in ("10.1.2.3:6379", "ray://head.example:10001", "0.0.0.0:1"):
        assert not is_loopback(address), address


def _node_and_square(x: int) -> tuple[str, int]:
    import ray

    return ray.get_runtime_context().get_node_id(), x * x


def _sum_shared(job: tuple[object, int]) -> int:
    shared, offset = job
    return int(sum(shared.get())) + offset  # type: ignore[attr-defined]


def _listening_addresses(temp_dir: str) -> set[str]:
    """The addresses the processes of the Ray cluster in ``temp_dir`` listen on (IPv4 or
    IPv4-mapped IPv6)."""
    import psutil  # a dependency of ray

    ours = set()
    for process in psutil.process_iter(["pid", "cmdline"]):
        if any(temp_dir in part for part in process.info["cmdline"] or []):
            ours.add(process.info["pid"])
            ours.update(child.pid for child in process.children(recursive=True))
    addresses = set()
    for connection in psutil.net_connections(kind="tcp"):
        if connection.status == psutil.CONN_LISTEN and connection.pid in ours:
            addresses.add(connection.laddr.ip.removeprefix("::ffff:"))
    assert ours and addresses, "found no process or socket of the cluster"
    return addresses


@pytest.mark.ray
def test_ray_executor_smoke(monkeypatch: pytest.MonkeyPatch) -> None:
    ray = pytest.importorskip("ray", reason="needs the ray extra (pip install leanrec[ray])")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    if ray.is_initialized():
        ray.shutdown()
    start = time.perf_counter()
    executor = RayExecutor(num_cpus_per_job=1, num_cpus=1, log_to_driver=False)
    reported: list[int] = []
    try:
        # A partial is not a plain function: checks any picklable callable is accepted.
        assert executor.map(
            functools.partial(pow, exp=2), [3, 1, 2], on_result=lambda i, r: reported.append(i)
        ) == [9, 1, 4]
        assert reported == [0, 1, 2]
        assert executor.map(_square, []) == []
        # the local cluster is bound to the loopback address, in a temporary directory of its own
        nodes = ray.nodes()
        assert [node["NodeManagerAddress"] for node in nodes] == ["127.0.0.1"]
        temp_dir = executor._temp_dir
        assert temp_dir is not None and os.path.isdir(temp_dir)
        node_id = executor.map(_node_and_square, [2])[0][0]
        assert {r.node_id for r in executor.records} == {node_id}
        assert len(executor.records) == 4 and all(r.pid != os.getpid() for r in executor.records)
        assert _listening_addresses(temp_dir) == {"127.0.0.1"}
        # shared data is put once and read by reference
        shared = executor.share(list(range(100)))
        assert executor.map(_sum_shared, [(shared, 0), (shared, 1)]) == [4950, 4951]
    finally:
        executor.close()
    assert not ray.is_initialized()
    assert not os.path.exists(temp_dir)
    print(f"ray smoke test: {time.perf_counter() - start:.1f} s")


def test_loopback_addresses_are_kept_while_connecting_and_restored_after() -> None:
    pytest.importorskip("ray", reason="needs the ray extra (pip install leanrec[ray])")
    from ray._private import services

    from leanrec.runner.ray_node import loopback_addresses_kept

    ray_own = services.resolve_ip_for_localhost
    with loopback_addresses_kept():
        assert services.resolve_ip_for_localhost("127.0.0.1") == "127.0.0.1"
        assert services.resolve_ip_for_localhost("localhost") == "127.0.0.1"
        assert services.resolve_ip_for_localhost("10.1.2.3") == "10.1.2.3"
        with loopback_addresses_kept():  # nested: not wrapped twice, restored once
            assert services.resolve_ip_for_localhost("127.0.0.1") == "127.0.0.1"
        assert services.resolve_ip_for_localhost("127.0.0.1") == "127.0.0.1"
    assert services.resolve_ip_for_localhost is ray_own


def test_share_once_stores_a_value_once_per_executor() -> None:
    executor = SerialExecutor()
    subset, other = [1, 2, 3], [1, 2, 3]
    first = executor.share_once(subset)
    assert executor.share_once(subset) is first  # the same object: the same handle
    assert executor.share_once(other) is not first  # equal but another object: its own
    assert first.get() is subset
