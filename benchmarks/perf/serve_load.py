"""Load test of ``leanrec serve`` against a plain FastAPI endpoint serving the same embeddings.

Three servers, one after the other, each a process of its own on 127.0.0.1, each under the same
closed-loop load (``GET /recommend/{user}?k=10``, seen items excluded, users drawn uniformly
from the model's users with one seeded generator) at 1, 8 and 32 concurrent clients:

* ``dense``: ``leanrec serve`` of an ML-1M LightGCN (``leanrec train``, d = 128, 3 layers);
* ``packed``: ``leanrec serve`` of the CIESS c = 90% model of a reduced search on the same
  data, packed by the search (``ciess_c90.safetensors``);
* ``naive``: the peer, a plain FastAPI endpoint (``def`` route, one user per request, the
  response a dict that FastAPI serialises) over the dense model's final embeddings, computed
  once at start-up as well, so the difference is the response path and batching across callers.

The load generator is raw asyncio streams (uvloop when installed) on keep-alive connections:
a client sends a request, reads the status line, headers and ``Content-Length`` body, and sends
the next. Every level is bounded in requests and in seconds and always stops by itself (a
level that overruns its seconds by 10 s is cancelled); the first ``--warmup`` seconds of each
level are not measured. Reported per server and level: requests/s, p50/p95/p99 latency, CPU
seconds of the server process and of the generator (this process) over the measured window,
errors; per server, its resident memory after start-up and after the load. The load average
is recorded before and after: on a machine shared with other work, compare the servers by
their ratios in the same run, not by absolute figures.

Models (``--prepare`` makes them in ``--work-dir`` when missing; minutes on an idle machine):

    leanrec train --dataset ml-1m --model lightgcn --embedding_dim 128 --n_layers 3 --lr 0.01 \\
        --batch_size 8192 --n_negatives 4 --epochs 15 --eval_every 5 --run-dir WORK/lightgcn
    leanrec experiment embedding-size --dataset ml-1m --model lightgcn --methods ciess \\
        --seed 0 --episodes 2 --iterations 2 --updates_per_iteration 5 --rl_batch_size 64 \\
        --pretrain-max_epochs 10 --retrain-max_epochs 4 --top_masks 1 \\
        --target_sparsities "[0.9]" --out WORK/es

The reduced search (2 episodes x 2 iterations instead of 30 x 10, 10 pretraining epochs) gives a
model with the same shape of per-row sizes at c = 90%; serving cost does not depend on how good
the sizes are.

Writes ``results/serve_load.json`` (``--tag T``: ``results/serve_load--T.json``) and prints a
table. Run from the repository root (needs the serve extra and ``../shared/data`` or
``LEANREC_DATA`` for ``--prepare``):

    python -m benchmarks.perf.serve_load [--prepare] [--work-dir runs/serve-load]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np

from benchmarks.common import add_tag_argument, data_dir, print_table, write_results

SCRIPT = "serve_load"
HOST = "127.0.0.1"
"""Every server binds here and every request goes here: no other address is ever used."""
CLIENT_LEVELS = (1, 8, 32)
K = 10


# ---------------------------------------------------------------------------- the naive peer
def naive_app(model_path: str) -> Any:
    """The peer: a plain FastAPI route scoring one user per request, over the same final
    embeddings (computed once at start-up) and with the same seen-item exclusion as leanrec."""
    import torch
    from fastapi import FastAPI, HTTPException

    from leanrec.models import load_model
    from leanrec.models.base import DotProductRecommender

    torch.set_num_threads(1)
    loaded = load_model(model_path)
    model = loaded.model
    assert isinstance(model, DotProductRecommender) and loaded.user_vocab is not None
    assert loaded.item_vocab is not None
    model.eval()
    with torch.no_grad():
        user_vectors, item_vectors = model.final_embeddings()
    seen = model.seen_matrix()
    user_index = {raw: i for i, raw in enumerate(loaded.user_vocab.raw_ids.tolist())}
    item_ids = loaded.item_vocab.raw_ids.tolist()
    app = FastAPI()

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/recommend/{user}")
    def recommend(user: int, k: int = 10) -> dict[str, Any]:
        if user not in user_index:
            raise HTTPException(404, f"unknown user {user}")
        index = user_index[user]
        with torch.no_grad():
            scores = (user_vectors[index : index + 1] @ item_vectors.T).float()[0]
            scores[torch.from_numpy(seen[index].indices).long()] = -torch.inf
            top = torch.topk(scores, k)
        return {
            "user": user,
            "items": [item_ids[i] for i in top.indices.tolist()],
            "scores": top.values.tolist(),
        }

    return app


def run_naive_server(model_path: str, port: int) -> None:
    import uvicorn

    app = naive_app(model_path)
    uvicorn.run(app, host=HOST, port=port, access_log=False, log_level="warning")


# ---------------------------------------------------------------------------- processes
def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (all its threads), from ``/proc``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def resident_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def load_average() -> float:
    return float(os.getloadavg()[0])


@dataclass
class ServerProcess:
    name: str
    process: subprocess.Popen[bytes]
    port: int

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_server(
    name: str, command: Sequence[str], port: int, timeout: float = 180
) -> ServerProcess:
    # one torch/OpenMP thread in every thread of every server (the peer's route runs in
    # FastAPI's thread pool, whose threads would otherwise each start a default-sized team)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(
        list(command), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env
    )
    server = ServerProcess(name, process, port)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            error = process.stderr.read().decode() if process.stderr else ""
            raise RuntimeError(f"{name} server exited: {error}")
        try:
            status = asyncio.run(asyncio.wait_for(_get_status(port, "/healthz"), 2))
            if status == 200:
                return server
        except (OSError, asyncio.TimeoutError):
            pass
        time.sleep(0.2)
    server.stop()
    raise RuntimeError(f"{name} server did not answer within {timeout} s")


# ---------------------------------------------------------------------------- the generator
async def _get(port: int, path: str) -> tuple[int, bytes]:
    """Status and body of one request on a connection of its own."""
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode())
        head = await reader.readuntil(b"\r\n\r\n")
        return int(head[9:12]), await reader.read()
    finally:
        writer.close()


async def _get_status(port: int, path: str) -> int:
    return (await _get(port, path))[0]


def batching_counters(port: int) -> tuple[int, int]:
    """``(batches, batched requests)`` so far of a ``leanrec serve`` (``GET /model``)."""
    _, body = asyncio.run(asyncio.wait_for(_get(port, "/model"), 10))
    serving = json.loads(body)["serving"]
    return int(serving["batches"]), int(serving["batched_requests"])


@dataclass
class Level:
    """One measured level: latencies (s) of the requests completed inside the window."""

    clients: int
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    issued: int = 0
    window_seconds: float = 0.0
    server_cpu: float = 0.0
    generator_cpu: float = 0.0
    mean_batch: float = float("nan")
    """Mean users per batched product over the level, warm-up included (leanrec servers)."""


async def _client(
    port: int,
    users: np.ndarray,
    offset: int,
    level: Level,
    measure_from: float,
    stop_at: float,
    max_requests: int,
) -> None:
    reader, writer = await asyncio.open_connection(HOST, port)
    n = offset
    try:
        while level.issued < max_requests:
            now = time.perf_counter()
            if now >= stop_at:
                break
            level.issued += 1
            user = users[n % len(users)]
            n += level.clients
            writer.write(f"GET /recommend/{user}?k={K} HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
            head = await reader.readuntil(b"\r\n\r\n")
            start = head.find(b"content-length:")  # uvicorn writes header names in lower case
            if start < 0:
                head = head.lower()
                start = head.find(b"content-length:")
            end = head.find(b"\r\n", start)
            await reader.readexactly(int(head[start + 15 : end]))
            done = time.perf_counter()
            if done >= measure_from:
                if head[9:12] != b"200":
                    level.errors += 1
                level.latencies.append(done - now)
    finally:
        writer.close()


async def _level(
    port: int, pid: int, users: np.ndarray, clients: int, seconds: float, warmup: float,
    max_requests: int,
) -> Level:  # fmt: skip
    level = Level(clients)
    began = time.perf_counter()
    measure_from, stop_at = began + warmup, began + warmup + seconds
    tasks = [
        _client(port, users, i, level, measure_from, stop_at, max_requests) for i in range(clients)
    ]
    gathered = asyncio.gather(*tasks)
    await asyncio.sleep(warmup)
    cpu_server, cpu_generator = cpu_seconds(pid), time.process_time()
    window_began = time.perf_counter()
    try:
        await asyncio.wait_for(gathered, timeout=seconds + 10)
    except asyncio.TimeoutError:
        level.errors += 1
    level.window_seconds = time.perf_counter() - window_began
    level.server_cpu = cpu_seconds(pid) - cpu_server
    level.generator_cpu = time.process_time() - cpu_generator
    return level


def measure(
    server: ServerProcess, users: np.ndarray, seconds: float, warmup: float, max_requests: int
) -> tuple[list[Level], float, float]:
    """Every client level against ``server``: ``(levels, RSS MB at start, RSS MB at the end)``."""
    run: Callable[[Coroutine[Any, Any, Level]], Level]
    try:
        import uvloop

        run = uvloop.run
    except ImportError:
        run = asyncio.run
    pid = server.process.pid
    rss_start = resident_mb(pid)
    levels = []
    for clients in CLIENT_LEVELS:
        before = batching_counters(server.port) if server.name != "naive" else (0, 0)
        level = run(_level(server.port, pid, users, clients, seconds, warmup, max_requests))
        if server.name != "naive":
            after = batching_counters(server.port)
            level.mean_batch = (after[1] - before[1]) / max(1, after[0] - before[0])
        levels.append(level)
    return levels, rss_start, resident_mb(pid)


# ---------------------------------------------------------------------------- models
def prepare(work: Path) -> tuple[Path, Path]:
    """The dense and the packed ML-1M LightGCN (made with the commands of the docstring when
    they are missing)."""
    from leanrec.cli import main as leanrec

    dense, packed = work / "lightgcn" / "model.pt", work / "es" / "ciess_c90.safetensors"
    common = ["--data-dir", str(data_dir())]
    if not dense.is_file():
        code = leanrec([
            "train", "--dataset", "ml-1m", "--model", "lightgcn", *common,
            "--embedding_dim", "128", "--n_layers", "3", "--lr", "0.01", "--batch_size", "8192",
            "--n_negatives", "4", "--epochs", "15", "--eval_every", "5",
            "--run-dir", str(work / "lightgcn"),
        ])  # fmt: skip
        if code != 0:
            raise SystemExit(f"training the LightGCN failed (exit {code})")
    if not packed.is_file():
        code = leanrec([
            "experiment", "embedding-size", "--dataset", "ml-1m", "--model", "lightgcn",
            *common, "--methods", "ciess", "--seed", "0", "--episodes", "2", "--iterations", "2",
            "--updates_per_iteration", "5", "--rl_batch_size", "64",
            "--pretrain-max_epochs", "10", "--retrain-max_epochs", "4", "--top_masks", "1",
            "--target_sparsities", "[0.9]", "--out", str(work / "es"),
        ])  # fmt: skip
        if code != 0:
            raise SystemExit(f"the reduced CIESS search failed (exit {code})")
    return dense, packed


def percentile_ms(latencies: list[float], q: float) -> float:
    return float(np.percentile(latencies, q) * 1000) if latencies else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work-dir", default="runs/serve-load")
    parser.add_argument("--prepare", action="store_true", help="make missing models first")
    parser.add_argument("--dense", default=None, help="default: WORK/lightgcn/model.pt")
    parser.add_argument("--packed", default=None, help="default: WORK/es/ciess_c90.safetensors")
    parser.add_argument("--seconds", type=float, default=8.0, help="measured seconds per level")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds per level")
    parser.add_argument("--max-requests", type=int, default=40_000, help="per level")
    parser.add_argument("--max-batch", type=int, default=64)
    parser.add_argument("--max-wait-ms", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--naive-server", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=None, help=argparse.SUPPRESS)
    add_tag_argument(parser, SCRIPT)
    args = parser.parse_args()
    if args.naive_server:  # the peer's own process
        run_naive_server(args.naive_server, args.port)
        return

    work = Path(args.work_dir)
    if args.prepare:
        dense, packed = prepare(work)
    else:
        dense = Path(args.dense or work / "lightgcn" / "model.pt")
        packed = Path(args.packed or work / "es" / "ciess_c90.safetensors")
    from leanrec.models import Recommender, load_model

    loaded = load_model(dense)
    assert loaded.user_vocab is not None
    model = cast(Recommender, loaded.model)  # a ranking model (LightGCN by default)
    users = np.random.default_rng(args.seed).permutation(loaded.user_vocab.raw_ids)
    served = {"dense": dense, "packed": packed}
    results: dict[str, Any] = {
        "k": K,
        "seconds_per_level": args.seconds,
        "warmup_seconds": args.warmup,
        "max_requests_per_level": args.max_requests,
        "max_batch": args.max_batch,
        "max_wait_ms": args.max_wait_ms,
        "users": len(users),
        "items": int(model.n_items),
        "embedding_dim": int(model.config.embedding_dim),
        "load_average_before": round(load_average(), 2),
    }
    rows = []
    for name in ("dense", "packed", "naive"):
        port = free_port()
        if name == "naive":
            command = [sys.executable, "-m", "benchmarks.perf.serve_load", "--naive-server",
                       str(dense), "--port", str(port)]  # fmt: skip
        else:
            command = [sys.executable, "-m", "leanrec.cli", "serve", str(served[name]),
                       "--host", HOST, "--port", str(port), "--max-batch", str(args.max_batch),
                       "--max-wait-ms", str(args.max_wait_ms)]  # fmt: skip
        server = start_server(name, command, port)
        try:
            levels, rss_start, rss_end = measure(
                server, users, args.seconds, args.warmup, args.max_requests
            )
        finally:
            server.stop()
        results[f"{name}|rss_mb_start"] = round(rss_start, 1)
        results[f"{name}|rss_mb_end"] = round(rss_end, 1)
        if name != "naive":
            results[f"{name}|file_bytes"] = served[name].stat().st_size
        for level in levels:
            key = f"{name}|c{level.clients}"
            qps = len(level.latencies) / level.window_seconds
            p50, p95, p99 = (percentile_ms(level.latencies, q) for q in (50, 95, 99))
            results.update({
                f"{key}|qps": round(qps, 1),
                f"{key}|p50_ms": round(p50, 3),
                f"{key}|p95_ms": round(p95, 3),
                f"{key}|p99_ms": round(p99, 3),
                f"{key}|requests": len(level.latencies),
                f"{key}|errors": level.errors,
                f"{key}|server_cpu_s": round(level.server_cpu, 2),
                f"{key}|generator_cpu_s": round(level.generator_cpu, 2),
                f"{key}|window_s": round(level.window_seconds, 2),
                f"{key}|mean_batch": round(level.mean_batch, 2),
                f"{key}|server_cpu_ms_per_request": round(
                    1000 * level.server_cpu / max(1, len(level.latencies)), 3
                ),
            })  # fmt: skip
            rows.append([
                name, level.clients, round(qps, 1), round(p50, 2), round(p95, 2), round(p99, 2),
                round(level.server_cpu, 2), round(level.generator_cpu, 2),
                round(level.mean_batch, 1), level.errors, round(rss_end, 1),
            ])  # fmt: skip
    for clients in CLIENT_LEVELS:
        for name in ("dense", "packed"):
            results[f"{name}|c{clients}|vs_naive"] = round(
                results[f"{name}|c{clients}|qps"] / results[f"naive|c{clients}|qps"], 2
            )
    results["load_average_after"] = round(load_average(), 2)
    path = write_results(SCRIPT, results, args.tag)
    print_table(
        ["server", "clients", "req/s", "p50 ms", "p95 ms", "p99 ms", "server CPU s",
         "generator CPU s", "mean batch", "errors", "RSS MB"],
        rows,
    )  # fmt: skip
    print(
        f"load average {results['load_average_before']} before, "
        f"{results['load_average_after']} after; {path}"
    )


if __name__ == "__main__":
    main()
