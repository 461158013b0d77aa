"""Driver of the cluster test: a small CIESS retraining and an AMEIR search, each once in this
process and once on the Ray cluster of ``RAY_ADDRESS`` (two nodes), results to a JSON file.

python -m tests.runner.cluster_driver OUT.json NODES

Run as a process of its own, with the cluster's token in its environment, so that the test's
process keeps no Ray state of another cluster. ``LEANREC_JOB_LOG`` names the file where every
job's node is recorded.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from leanrec.data.behavior import BehaviorSplit
from leanrec.runner import init_ray, jsonable, shutdown_ray
from leanrec.runner.cluster import wait_for_nodes
from leanrec.search.architecture.policy import search_architecture
from leanrec.search.embedding_size import run_experiment
from tests.models.ctr.synthetic import make_samples
from tests.search.architecture.test_search import tiny_config as tiny_ameir
from tests.search.embedding_size.test_dispatch import two_mask_experiment


def without_seconds(value: Any) -> Any:
    """``value`` (JSON data) without the wall times, which differ between executors."""
    if isinstance(value, dict):
        return {k: without_seconds(v) for k, v in value.items() if "seconds" not in k}
    if isinstance(value, list):
        return [without_seconds(v) for v in value]
    return value


def ciess(folder: Path, executor: str) -> list[dict[str, Any]]:
    experiment = two_mask_experiment(folder / executor, executor=executor)
    return without_seconds(run_experiment(experiment, log=lambda message: None).rows)


def ameir(split: BehaviorSplit, executor: str) -> dict[str, Any]:
    found = search_architecture(split, tiny_ameir(executor=executor))
    return without_seconds(
        jsonable({"architecture": found.architecture, "valid": found.valid, "steps": found.steps})
    )


def driver_listeners() -> list[str]:
    """Addresses on which this driver process listens for TCP connections (Ray's core worker
    of a driver runs a gRPC server)."""
    import psutil  # a dependency of ray

    return [
        connection.laddr.ip
        for connection in psutil.Process().net_connections(kind="tcp")
        if connection.status == psutil.CONN_LISTEN
    ]


def main(out: str, nodes: int) -> None:
    train, _ = make_samples(1500, seed=1)
    valid, _ = make_samples(400, seed=2)
    test, _ = make_samples(400, seed=3)
    split = BehaviorSplit(train, valid, test, train.feature_map, name="synthetic")
    with tempfile.TemporaryDirectory() as folder:
        serial = {"ciess": ciess(Path(folder), "serial"), "ameir": ameir(split, "serial")}
        init_ray(log_to_driver=False)  # RAY_ADDRESS: the test's cluster
        try:
            alive = wait_for_nodes(nodes)
            import ray

            addresses = sorted({node["NodeManagerAddress"] for node in ray.nodes()})
            on_ray = {"ciess": ciess(Path(folder), "ray"), "ameir": ameir(split, "ray")}
            listeners = driver_listeners()
        finally:
            shutdown_ray()
    report = {
        "nodes": alive,
        "addresses": addresses,
        "driver_listeners": listeners,
        "serial": serial,
        "ray": on_ray,
    }
    Path(out).write_text(json.dumps(report))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
