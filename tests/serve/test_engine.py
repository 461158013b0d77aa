"""The ranking engine in-process: chunked products equal one product, and a user who has seen
nearly every item gets a shorter list rather than seen items."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from leanrec.data.splits import ratio_split
from leanrec.models import MF, build_model, load_model
from leanrec.models.compress import (
    save_compressed,
    set_entity_sizes,
    use_masked_tables,
)
from leanrec.serve import engine as engine_module
from leanrec.serve.engine import RankingEngine, TopKRequest, build_engine
from tests.serve.conftest import Models, tiny_interactions


def _engine(models: Models) -> RankingEngine:
    engine = build_engine(load_model(models.dense), models.dense)
    assert isinstance(engine, RankingEngine)
    return engine


def test_chunked_products_answer_as_one(models: Models, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = _engine(models)
    requests = [TopKRequest(f"u{i}", i % engine.n_users, 1 + i % 7, i % 2 == 0) for i in range(50)]
    whole = engine.recommend(requests)
    monkeypatch.setattr(engine_module, "SCORE_CHUNK", 3)
    chunked = engine.recommend(requests)
    assert [a.items for a in chunked] == [a.items for a in whole]
    assert [a.user for a in chunked] == [f"u{i}" for i in range(50)]
    assert [len(a.items) for a in whole] == [1 + i % 7 for i in range(50)]


def test_a_list_stops_before_the_seen_items(models: Models) -> None:
    engine = _engine(models)
    seen = int(engine.seen_indptr[1] - engine.seen_indptr[0])
    assert seen > 0
    (answer,) = engine.recommend([TopKRequest("first", 0, engine.n_items, True)])
    assert len(answer.items) == engine.n_items - seen  # no -inf scores in the answer
    assert all(score > float("-inf") for score in answer.scores)


def padded_rows_bytes(model: Any) -> int:
    """Bytes of every user and item row padded to ``d_max`` (float32)."""
    return int((model.n_users + model.n_items) * 16 * 4)


def test_a_packed_mf_is_served_from_its_packed_tables(models: Models, tmp_path: Path) -> None:
    """No full-width user and item vectors: the engine keeps the model, scores from the packed
    values, and answers as ``Recommender.recommend`` does."""
    split = ratio_split(tiny_interactions(), (0.8, 0.1, 0.1), seed=0)
    model = build_model("mf", split.train, {"embedding_dim": 16}, seed=0)
    use_masked_tables(model)
    rng = np.random.default_rng(2)
    set_entity_sizes(model, rng.integers(0, 17, model.n_users), rng.integers(0, 17, model.n_items))
    path = save_compressed(model, tmp_path / "mf.safetensors")
    served = load_model(path)
    assert isinstance(served.model, MF) and served.model.scores_from_packed_tables()
    engine = build_engine(served, path)
    assert isinstance(engine, RankingEngine)
    assert engine.user_vectors is None and engine.item_vectors is None
    # by hand: packed values and int32 offsets, the int32 seen items (shared with the model,
    # counted once), the popularity ranking (int64 items, float64 counts)
    sizes = served.model.user_embedding.sizes.sum() + served.model.item_embedding.sizes.sum()
    tables = 4 * (int(sizes) + model.n_users + 1 + model.n_items + 1)
    seen = 4 * (model.n_users + 1 + served.model.seen_indices.numel())
    assert engine.served_bytes() == tables + seen + 16 * model.n_items
    users = list(range(model.n_users))
    answers = engine.recommend([TopKRequest(u, u, 5, True) for u in users])
    expected, _ = model.recommend(torch.tensor(users), k=5)
    assert [a.items for a in answers] == expected.tolist()
    # pairs from two lookups, equal to the full rows' entries
    pairs = [(u, (3 * u) % model.n_items) for u in users]
    scored = engine.score([{"user": u, "item": i} for u, i in pairs])["scores"]
    with torch.no_grad():
        full = model.eval().score_all(torch.tensor(users))
    expected_pairs = [float(full[u, i]) for u, i in pairs]
    np.testing.assert_allclose(scored, expected_pairs, atol=1e-6)
    # padded vectors on request: the dense path, the same lists, the padded rows' bytes
    padded = build_engine(served, path, padded_vectors=True)
    assert isinstance(padded, RankingEngine) and padded.user_vectors is not None
    assert padded.user_vectors.shape == (model.n_users, 16)
    again = padded.recommend([TopKRequest(u, u, 5, True) for u in users])
    assert [a.items for a in again] == [a.items for a in answers]
    # it holds the padded rows where the packed engine held the packed tables
    assert padded.served_bytes() - engine.served_bytes() == padded_rows_bytes(model) - tables
