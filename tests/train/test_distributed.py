"""Data-parallel training under ``torchrun --nproc_per_node 2`` (gloo, loopback only).

Tolerance. Both ranks draw the epoch's triples (and shuffles) exactly as one process does and
train on the two halves of every batch; the averaged gradient is the whole batch's. What differs
from one process is the order of the float sums (two half-batch means averaged instead of one
mean; each rank's sparse rows coalesced, then both ranks'). In float64 that leaves the weights
equal to 1e-12 (checked with NeuMF, whose MLP goes through DDP and tables through the hand
all-gather); in float32 the differences are rounding (about 1e-7 relative per step) that a few
epochs of Adam can grow, so float32 metrics are compared within 1e-3 absolute (an NDCG@20 over
2,000 users moves by about 1.5e-4 when one user's top 20 changes by one item) and per-epoch
losses within 1e-5 relative.
"""

from __future__ import annotations

import ipaddress
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch

from leanrec.api import TrainConfig, train
from leanrec.train.bpr import TrainerConfig
from leanrec.train.checkpoint import load_checkpoint
from leanrec.train.distributed import DataParallel, data_parallel
from tests.train import ddp_driver

REPO = Path(__file__).resolve().parents[2]
TORCHRUN = [sys.executable, "-m", "torch.distributed.run"]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def torchrun(*args: str) -> list[str]:
    return [
        *TORCHRUN,
        "--nproc_per_node",
        "2",
        "--rdzv-backend",
        "leanrec-loopback",  # the store listens on 127.0.0.1 only (static's listens on all)
        "--rdzv-endpoint",
        f"127.0.0.1:{free_port()}",
        *args,
    ]


def environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK")}
    env["OMP_NUM_THREADS"] = "1"
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), str(REPO / "src"), env.get("PYTHONPATH", "")])
    return env


def leanrec_train(*args: str) -> list[str]:
    return ["-m", "leanrec.cli", "train", *args]


def test_part_splits_a_batch_into_disjoint_covering_parts() -> None:
    # 5 samples over 2 ranks: [10, 12) and [12, 15); 4 over 3: sizes 1, 1, 2
    assert [DataParallel(r, 2).part(10, 15) for r in range(2)] == [slice(10, 12), slice(12, 15)]
    sizes = [DataParallel(r, 3).part(0, 4) for r in range(3)]
    assert [(s.start, s.stop) for s in sizes] == [(0, 1), (1, 2), (2, 4)]
    # weights N n_r / b of 2 and 3 samples of 5: the averaged gradient is the 5's mean
    assert DataParallel(0, 2).loss_weight(2, 5) == pytest.approx(0.8)
    assert DataParallel(1, 2).loss_weight(3, 5) == pytest.approx(1.2)


def test_one_process_has_no_data_parallel_group(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert data_parallel() is None
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert data_parallel() is None


def _float_items(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v for k, v in state.items() if v.is_floating_point()}


def test_two_processes_match_one_and_hold_identical_weights(
    tmp_path: Path, one_torch_thread: None
) -> None:
    began = time.perf_counter()
    done = subprocess.run(
        torchrun("-m", "tests.train.ddp_driver", str(tmp_path)),
        cwd=REPO,
        env=environment(),
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in range(2)]
    one = {name: run() for name, run in ddp_driver.RUNS.items()}
    for name in ddp_driver.RUNS:
        # every rank ends with the same weights, bit for bit
        first, second = (_float_items(rank[name]["state"]) for rank in ranks)
        assert first.keys() == second.keys()
        for key in first:
            assert torch.equal(first[key], second[key]), (name, key)
    # float64: equal to the one-process run up to the order of the sums
    for key, value in _float_items(one["neumf64"]["state"]).items():
        assert value.dtype == torch.float64
        torch.testing.assert_close(ranks[0]["neumf64"]["state"][key], value, rtol=0, atol=1e-12)
    # float32: metrics and losses within the module docstring's tolerance
    for name in ("mf", "deepfm"):
        for metric, value in one[name]["valid"].items():
            assert ranks[0][name]["valid"][metric] == pytest.approx(value, abs=1e-3), metric
            assert ranks[1][name]["valid"][metric] == ranks[0][name]["valid"][metric]
        assert ranks[0][name]["losses"] == pytest.approx(one[name]["losses"], rel=1e-5)
    print(f"two processes + one: {time.perf_counter() - began:.1f} s")


def _wait_for_checkpoint(path: Path, process: subprocess.Popen[str], epoch: int) -> int:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert process.poll() is None, "the run ended before it could be killed"
        if path.exists():  # written to a temporary file and renamed: never torn
            saved = int(load_checkpoint(path)["epoch"])
            if saved >= epoch:
                return saved
        time.sleep(0.2)
    raise AssertionError("no checkpoint within 120 s")


def _workers(launcher: subprocess.Popen[str]) -> list[int]:
    """The pids of ``torchrun``'s workers (its children, each in a session of its own)."""
    workers = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == launcher.pid:  # the parent's pid
            workers.append(int(stat.parent.name))
    return workers


def _tcp_endpoints(pids: list[int]) -> list[tuple[str, str]]:
    """(local, remote) IPv4 addresses of every TCP socket the processes ``pids`` hold (their
    socket inodes looked up in ``/proc/net/tcp``; IPv6 sockets in ``tcp6``)."""
    inodes = set()
    for pid in pids:
        folder = Path(f"/proc/{pid}/fd")
        for fd in folder.iterdir() if folder.exists() else []:
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    endpoints = []
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[9] in inodes:
                endpoints.append((_address(fields[1]), _address(fields[2])))
    return endpoints


def _address(field: str) -> str:
    """``0100007F:1F90`` -> ``127.0.0.1``: ``/proc/net/tcp`` prints each 32-bit word of an
    address in host (little-endian) order; an IPv6 address that maps an IPv4 one gives that."""
    words = bytes.fromhex(field.split(":")[0])
    raw = b"".join(words[i : i + 4][::-1] for i in range(0, len(words), 4))
    if len(raw) == 16 and raw[:12] == bytes(10) + b"\xff\xff":
        raw = raw[12:]
    if len(raw) == 4:
        return ".".join(str(byte) for byte in raw)
    return str(ipaddress.IPv6Address(raw))


def _kill_run(launcher: subprocess.Popen[str]) -> None:
    """SIGKILL ``torchrun``'s workers and ``torchrun``."""
    workers = _workers(launcher)
    assert len(workers) == 2
    for pid in [*workers, launcher.pid]:
        os.kill(pid, signal.SIGKILL)
    launcher.wait(timeout=30)
    for pid in workers:
        while Path(f"/proc/{pid}").exists() and "Z" not in _state(pid):
            time.sleep(0.05)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "Z"


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds torchrun's workers in /proc")
def test_killed_two_process_run_resumes_and_finishes(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    options = ["--dataset", "synthetic", "--model", "mf", "--epochs", "15", "--num_threads", "1"]
    options += ["--run-dir", str(run_dir)]
    first = subprocess.Popen(
        torchrun(*leanrec_train(*options)),
        cwd=tmp_path,
        env=environment(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        killed_at = _wait_for_checkpoint(run_dir / "train_state.pt", first, epoch=2)
        # loopback only: every TCP socket of the ranks (gloo's pairs, the store's clients) and
        # of torchrun itself (the store's server: with torchrun's static rendezvous it listens
        # on every interface, ``::``, which fails here)
        endpoints = _tcp_endpoints([*_workers(first), first.pid])
        assert endpoints
        for local, remote in endpoints:
            assert local.startswith("127.") or local == "::1", endpoints
            assert remote.startswith("127.") or remote in ("0.0.0.0", "::", "::1"), endpoints
    finally:
        _kill_run(first)
    assert not (run_dir / "metrics.json").exists()
    kept = load_checkpoint(run_dir / "train_state.pt")
    assert int(kept["epoch"]) >= killed_at
    assert len(kept["rank_torch_rng"]) == 2  # every rank's generator
    resumed = subprocess.run(
        torchrun(*leanrec_train(*options, "--resume")),
        cwd=tmp_path,
        env=environment(),
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert resumed.stdout.count("run directory:") == 1  # rank 0 alone reports
    history: list[dict[str, Any]] = json.loads((run_dir / "history.json").read_text())
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert [int(r["epoch"]) for r in history] == list(range(1, len(history) + 1))
    assert metrics["epochs_run"] == len(history)
    # the epochs before the kill are the checkpoint's, unchanged
    for before, after in zip(kept["history"], history, strict=False):
        assert before == after
    assert not (run_dir / "train_state.pt").exists()
    assert (run_dir / "model.pt").exists()
    # and ends where one process ends, within the module docstring's tolerance
    trainer = TrainerConfig(max_epochs=15, num_threads=1)
    one = train(TrainConfig(dataset="synthetic", model="mf", trainer=trainer))
    assert metrics["best_epoch"] == one.train_result.best_epoch
    for metric, value in one.valid_metrics.items():
        assert metrics[f"valid_{metric}"] == pytest.approx(value, abs=1e-3), metric


def test_loopback_rendezvous_is_registered_with_torchrun() -> None:
    from importlib.metadata import entry_points

    from leanrec.train.loopback_rendezvous import bind_listener, create_handler, handler_creator

    names = {point.name: point.value for point in entry_points(group="torchrun.handlers")}
    assert names.get("leanrec-loopback") == "leanrec.train.loopback_rendezvous:handler_creator"
    assert handler_creator() is create_handler
    listener = bind_listener("127.0.0.1", 0)
    try:
        assert listener.getsockname()[0] == "127.0.0.1"
    finally:
        listener.close()
