"""Small models trained here and real ``leanrec serve`` processes on free ports of 127.0.0.1.

Every server is started once per test session, all of them at the same time (a start costs the
import of torch, seconds on a busy machine), and stopped with SIGTERM at the end.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from leanrec.data.interactions import Interactions
from leanrec.data.splits import ratio_split
from leanrec.models import build_model
from leanrec.models.compress import save_compressed, set_entity_sizes, use_masked_tables
from leanrec.models.ctr import build_ctr_model
from leanrec.models.loading import save_ranking_model
from leanrec.models.seq import build_next_item_model, save_next_item_model
from leanrec.train import BPRTrainer, TrainerConfig
from tests.models.contract import StreamModelContract
from tests.models.ctr.synthetic import feature_map

N_USERS, N_ITEMS = 40, 30
USER_OFFSET, ITEM_OFFSET = 1000, 5000
"""Raw IDs are offset from the indices, so a server mixing them up answers wrongly."""
START_SECONDS = 120.0
"""Longest wait for a server to answer /healthz (importing torch on a busy machine)."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    """A running ``leanrec serve`` and an HTTP client to it."""

    process: subprocess.Popen[bytes]
    port: int
    model: Path

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """``(status, decoded JSON)`` of one request (a fresh connection, 30 s timeout)."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            headers = {"Content-Type": "application/json"} if body is not None else {}
            data = None if body is None else json.dumps(body)
            connection.request(method, path, body=data, headers=headers)
            response = connection.getresponse()
            raw = response.read()
            kind = response.getheader("Content-Type", "")
            return response.status, json.loads(raw) if "json" in kind else raw.decode()
        finally:
            connection.close()

    def get(self, path: str) -> tuple[int, Any]:
        return self.request("GET", path)

    def post(self, path: str, body: Any) -> tuple[int, Any]:
        return self.request("POST", path, body)


def start(model: Path, *options: str) -> Server:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "leanrec.cli", "serve", str(model), "--port", str(port), *options],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    return Server(process, port, model)


def wait_until_up(server: Server) -> None:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            _, err = server.process.communicate()
            raise RuntimeError(f"server exited {server.process.returncode}: {err.decode()}")
        try:
            status, _ = server.get("/healthz")
            if status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"no answer from {server.model} within {START_SECONDS} s")


def stop(server: Server) -> int:
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGTERM)
        try:
            server.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()
    for stream in (server.process.stdout, server.process.stderr):
        if stream is not None:
            stream.close()
    return int(server.process.returncode)


# ---------------------------------------------------------------------------------- models
def tiny_interactions() -> Interactions:
    """Each user has three items, plus 80 random events; raw IDs offset from the indices."""
    rng = np.random.default_rng(0)
    users = np.concatenate([np.repeat(np.arange(N_USERS), 3), rng.integers(0, N_USERS, 80)])
    items = np.concatenate([(np.arange(3 * N_USERS) * 7) % N_ITEMS, rng.integers(0, N_ITEMS, 80)])
    return Interactions.from_raw(users + USER_OFFSET, items + ITEM_OFFSET, name="tiny")


@dataclass
class Models:
    dense: Path
    packed: Path
    stream: Path
    ctr: Path
    next_item: Path
    train: Interactions


def make_models(folder: Path) -> Models:
    split = ratio_split(tiny_interactions(), (0.8, 0.1, 0.1), seed=0)
    model = build_model("lightgcn", split.train, {"embedding_dim": 16, "n_layers": 2}, seed=0)
    config = TrainerConfig(max_epochs=3, batch_size=64, learning_rate=0.05, eval_every=10)
    BPRTrainer(model, split.train, split.valid, config).fit()
    users, items = split.train.user_vocab, split.train.item_vocab
    dense = save_ranking_model(model, folder / "dense" / "model.pt", users, items)
    (folder / "dense" / "metrics.json").write_text(json.dumps({"test_recall@20": 0.5}))
    use_masked_tables(model)
    rng = np.random.default_rng(1)
    set_entity_sizes(model, rng.integers(1, 17, model.n_users), rng.integers(1, 17, model.n_items))
    packed = save_compressed(model, folder / "packed.safetensors", users.raw_ids, items.raw_ids)

    contract = StreamModelContract()
    contract.model_name, contract.options = "deepfm", {"mlp_dims": (8,)}
    stream = contract.save(contract.build_model(), folder / "stream.pt")

    torch.manual_seed(0)
    ctr_model = build_ctr_model("dnn", feature_map(), seed=0, embedding_dim=8, mlp_dims=(8,))
    ctr = ctr_model.save(folder / "ctr.pt")

    sequential = build_next_item_model("sasrec", N_ITEMS, {"embedding_dim": 8, "max_length": 5})
    raw_items = np.arange(N_ITEMS) + ITEM_OFFSET  # item ID i is raw i - 1 + ITEM_OFFSET
    next_item = save_next_item_model(sequential, folder / "next" / "model.pt", raw_items)
    return Models(dense, packed, stream, ctr, next_item, split.train)


@dataclass
class Servers:
    dense: Server
    packed: Server
    stream: Server
    ctr: Server
    next_item: Server


@pytest.fixture(scope="session")
def models(tmp_path_factory: pytest.TempPathFactory) -> Models:
    return make_models(tmp_path_factory.mktemp("served-models"))


@pytest.fixture(scope="session")
def servers(models: Models) -> Iterator[Servers]:
    started = Servers(
        start(models.dense, "--cold-start", "popular", "--max-batch", "4"),
        start(models.packed),
        start(models.stream),
        start(models.ctr),
        start(models.next_item),
    )
    every = (started.dense, started.packed, started.stream, started.ctr, started.next_item)
    try:
        for server in every:
            wait_until_up(server)
        yield started
    finally:
        for server in every:
            stop(server)
