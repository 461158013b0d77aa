"""A Ray cluster of separate node processes on this machine, bound to a loopback address.

What a test or a benchmark needs to run searches on a real multi-node cluster without a second
machine: a head node and ``workers`` worker nodes, each its own ``ray start`` process with a
capped object store, its own temporary directory and its own authentication token, so that it
never joins (or stops) another Ray instance of the machine::

    with LoopbackCluster(workers=1, cpus_per_node=1) as cluster:
        subprocess.run([sys.executable, "driver.py"], env=cluster.driver_env(), check=True)

The nodes' address is :data:`CLUSTER_ADDRESS`, 127.0.0.1. Ray replaces that address by the
machine's network address when nodes may join from other machines, and its servers then listen
on every interface; the nodes here run Ray's command line through :mod:`leanrec.runner.ray_node`,
which keeps 127.0.0.1, so that every server of every node (GCS, raylets, agents, workers)
listens on 127.0.0.1 alone and every connection between the nodes and their drivers stays on
it (drivers connect through :func:`~leanrec.runner.executors.init_ray`, which keeps the address
the same way).

The nodes are stopped by their process group (each ``ray start --block`` runs in a session of
its own, with every process it starts), never by ``ray stop``, which stops every Ray process
of the machine.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

CLUSTER_ADDRESS = "127.0.0.1"
"""The loopback address every node announces and listens on."""


def free_port(host: str = CLUSTER_ADDRESS) -> int:
    """A TCP port free on ``host`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


def _ray_command() -> list[str]:
    """Ray's command line run through :mod:`leanrec.runner.ray_node` by this interpreter."""
    try:
        import ray  # noqa: F401
    except ImportError as error:
        raise ImportError("a Ray cluster needs the ray extra: pip install leanrec[ray]") from error
    return [sys.executable, "-m", "leanrec.runner.ray_node"]


class LoopbackCluster:
    """A head and ``workers`` worker nodes, separate processes, all on :data:`CLUSTER_ADDRESS`.

    Args:
        workers: worker nodes besides the head (the head runs jobs too).
        cpus_per_node: ``--num-cpus`` of every node (what Ray schedules by, not a hard limit).
        object_store_bytes: ``--object-store-memory`` of every node.
        root: where the nodes' temporary directories and logs go (None: a new one under
            ``/tmp``, removed on :meth:`stop`; Ray's socket paths must stay short).
        start_seconds: how long to wait for each node to come up.
    """

    def __init__(
        self,
        workers: int = 1,
        cpus_per_node: int = 1,
        object_store_bytes: int = 150 * 1024**2,
        root: str | Path | None = None,
        start_seconds: float = 90.0,
    ) -> None:
        self.workers = workers
        self.cpus_per_node = cpus_per_node
        self.object_store_bytes = object_store_bytes
        self.start_seconds = start_seconds
        self._own_root = root is None
        self.root = Path(tempfile.mkdtemp(prefix="lr-", dir="/tmp") if root is None else root)
        self.token = secrets.token_hex(32)
        self.port = 0
        self.processes: list[subprocess.Popen[bytes]] = []

    @property
    def address(self) -> str:
        """``host:port`` of the head (what ``RAY_ADDRESS`` is set to for drivers)."""
        return f"{CLUSTER_ADDRESS}:{self.port}"

    def node_env(self) -> dict[str, str]:
        """Environment of the nodes and their drivers: this cluster's token, no usage stats."""
        env = dict(os.environ)
        env.pop("RAY_ADDRESS", None)
        env.pop("RAY_AUTH_TOKEN_PATH", None)
        env.update(
            RAY_AUTH_MODE="token",
            RAY_AUTH_TOKEN=self.token,
            RAY_USAGE_STATS_ENABLED="0",
        )
        return env

    def driver_env(self) -> dict[str, str]:
        """Environment of a driver process of this cluster (``RAY_ADDRESS`` set)."""
        return {**self.node_env(), "RAY_ADDRESS": self.address}

    def _start_node(self, name: str, role_args: list[str]) -> None:
        temp_dir = self.root / name
        temp_dir.mkdir(parents=True, exist_ok=True)
        log = (self.root / f"{name}.log").open("wb")
        command = [
            *_ray_command(),
            "start",
            "--block",
            *role_args,
            f"--node-ip-address={CLUSTER_ADDRESS}",
            f"--num-cpus={self.cpus_per_node}",
            f"--object-store-memory={self.object_store_bytes}",
            f"--temp-dir={temp_dir}",
            "--disable-usage-stats",
        ]
        process = subprocess.Popen(
            command,
            env=self.node_env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stopped as one, by its id
        )
        log.close()
        self.processes.append(process)

    def _wait_for_port(self) -> None:
        deadline = time.monotonic() + self.start_seconds
        while time.monotonic() < deadline:
            if self.processes[0].poll() is not None:
                raise RuntimeError(f"the Ray head exited: see {self.root / 'head.log'}")
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
                if probe.connect_ex((CLUSTER_ADDRESS, self.port)) == 0:
                    return
            time.sleep(0.5)
        raise TimeoutError(f"the Ray head did not listen within {self.start_seconds:.0f} s")

    def start(self) -> LoopbackCluster:
        """Start the head, wait until it listens, then start the worker nodes."""
        self.port = free_port()
        self._start_node(
            "head",
            ["--head", f"--port={self.port}", "--include-dashboard=false"],
        )
        self._wait_for_port()
        for index in range(self.workers):
            self._start_node(f"worker{index}", [f"--address={self.address}"])
        return self

    def stop(self) -> None:
        """Stop every node's process group (SIGTERM, then SIGKILL after 10 s) and remove the
        temporary directory this cluster made."""
        for process in self.processes:
            _signal_group(process, signal.SIGTERM)
        deadline = time.monotonic() + 10.0
        for process in self.processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
        time.sleep(1.0)  # the nodes' children leave after their parent
        for process in self.processes:
            _signal_group(process, signal.SIGKILL)
            if process.poll() is None:
                process.wait(timeout=10)
        self.processes = []
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> LoopbackCluster:
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()


def _signal_group(process: subprocess.Popen[bytes], signum: int) -> None:
    """Send ``signum`` to the process group ``process`` leads (started in a session of its
    own); nothing when the group is gone."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signum)


def wait_for_nodes(count: int, timeout: float = 90.0) -> list[str]:
    """Wait (in a driver connected with ``ray.init``) until ``count`` nodes are alive; return
    their IDs.

    Raises:
        TimeoutError: fewer nodes alive after ``timeout`` seconds.
    """
    import ray

    deadline = time.monotonic() + timeout
    while True:
        alive = [node["NodeID"] for node in ray.nodes() if node["Alive"]]
        if len(alive) >= count:
            return alive
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(alive)} of {count} Ray nodes alive after {timeout:.0f} s")
        time.sleep(0.5)


__all__ = ["CLUSTER_ADDRESS", "LoopbackCluster", "free_port", "wait_for_nodes"]
