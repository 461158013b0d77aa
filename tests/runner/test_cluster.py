"""Searches on a real two-node Ray cluster: a head and a worker node started here as separate
processes on a loopback address, a CIESS retraining and an AMEIR search run on it through
``RAY_ADDRESS``, compared with the serial executor; jobs must have run on both nodes."""

from __future__ import annotations

import ipaddress
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from leanrec.runner.cluster import CLUSTER_ADDRESS, LoopbackCluster

REPO = Path(__file__).resolve().parents[2]


def _cluster_sockets(cluster: LoopbackCluster, status: str) -> list[Any]:
    """TCP sockets in ``status`` (psutil's ``CONN_ESTABLISHED``, ``CONN_LISTEN``) of the
    cluster's processes (every process in the nodes' process groups)."""
    import os

    import psutil  # a dependency of ray

    groups = {process.pid for process in cluster.processes}
    found = []
    for connection in psutil.net_connections(kind="tcp"):
        if connection.status != status or connection.pid is None:
            continue
        try:
            if os.getpgid(connection.pid) in groups:
                found.append(connection)
        except ProcessLookupError:
            continue
    return found


def _cluster_connections(cluster: LoopbackCluster) -> list[tuple[str, str]]:
    """``(local, remote)`` addresses of the cluster's established TCP connections."""
    import psutil

    established = _cluster_sockets(cluster, psutil.CONN_ESTABLISHED)
    return [(c.laddr.ip, c.raddr.ip) for c in established]


def _cluster_listeners(cluster: LoopbackCluster) -> list[str]:
    """Addresses on which the cluster's processes listen for TCP connections."""
    import psutil

    return [c.laddr.ip for c in _cluster_sockets(cluster, psutil.CONN_LISTEN)]


def _is_loopback(ip: str) -> bool:
    return ipaddress.ip_address(ip.removeprefix("::ffff:")).is_loopback


@pytest.mark.ray
def test_ciess_and_ameir_on_a_two_node_cluster_match_the_serial_runs(tmp_path: Path) -> None:
    pytest.importorskip("ray", reason="needs the ray extra (pip install leanrec[ray])")
    began = time.perf_counter()
    out, jobs = tmp_path / "report.json", tmp_path / "jobs.jsonl"
    with LoopbackCluster(workers=1, cpus_per_node=1, object_store_bytes=150 * 1024**2) as cluster:
        env = {**cluster.driver_env(), "LEANREC_JOB_LOG": str(jobs)}
        driver = subprocess.run(
            [sys.executable, "-m", "tests.runner.cluster_driver", str(out), "2"],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert driver.returncode == 0, driver.stderr[-3000:]
        connections = _cluster_connections(cluster)
        listeners = _cluster_listeners(cluster)
    report = json.loads(out.read_text())
    # two nodes, both on 127.0.0.1; no server of a node or of the driver listens on another
    # interface (Ray's would listen on 0.0.0.0 without leanrec.runner.ray_node), and no
    # connection goes to any other address
    assert len(report["nodes"]) == 2
    assert report["addresses"] == [CLUSTER_ADDRESS] == ["127.0.0.1"]
    assert len(listeners) >= 4 and all(_is_loopback(ip) for ip in listeners), listeners
    assert report["driver_listeners"] and all(
        _is_loopback(ip) for ip in report["driver_listeners"]
    ), report["driver_listeners"]
    assert connections and all(_is_loopback(a) and _is_loopback(b) for a, b in connections)
    # the same rows and the same search, job for job
    assert report["ray"]["ciess"] == report["serial"]["ciess"]
    assert report["ray"]["ameir"] == report["serial"]["ameir"]
    ciess = next(row for row in report["ray"]["ciess"] if row["method"] == "ciess")
    assert ciess["screened"] == 6 and len(ciess["candidates_retrained"]) == 2
    # every job recorded its node; the retraining's and the search's jobs ran on both nodes
    records = [json.loads(line) for line in jobs.read_text().splitlines()]
    remote = [r for r in records if r["node_id"] != "local"]
    masks = {r["node_id"] for r in remote if r["desc"] == "masks"}
    children = {r["node_id"] for r in remote if r["desc"] != "masks"}
    assert masks == set(report["nodes"]) and children == set(report["nodes"])
    print(f"two-node cluster test: {time.perf_counter() - began:.0f} s, {len(remote)} Ray jobs")
