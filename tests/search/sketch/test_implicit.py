"""Implicit feedback (next item among all items): evaluation against hand-computed ranks, and
training of every method on implicit streams."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from leanrec.data.interactions import Interactions
from leanrec.data.streams import UserStreams, user_split
from leanrec.search.sketch import SketchConfig, SketchNCF, train_sketch
from leanrec.search.sketch.baselines import ReservoirDecider
from leanrec.search.sketch.trainer import evaluate_sketch


def _implicit_streams(users: int, length: int, items: int, seed: int = 0) -> UserStreams:
    rng = np.random.default_rng(seed)
    user_ids = np.repeat(np.arange(users), length)
    item_ids = rng.integers(0, items, users * length)
    data = Interactions.from_raw(user_ids, item_ids, timestamps=np.tile(np.arange(length), users))
    streams = UserStreams.from_interactions(data, min_length=2)
    assert not streams.explicit
    return streams


def test_recall_and_mrr_at_20_against_hand_computed_ranks() -> None:
    n_items = 30
    streams = _implicit_streams(users=5, length=6, items=n_items)
    model = SketchNCF(streams.n_items, dim=4, hidden=4, explicit=False)
    with torch.no_grad():
        model.item_embedding.weight.zero_()  # logits = item bias: one fixed ranking
        bias = torch.randperm(streams.n_items, generator=torch.Generator().manual_seed(1))
        model.item_bias.weight.copy_(bias.to(torch.float32).unsqueeze(1))
    rank_of = {item: int((bias > bias[item]).sum()) + 1 for item in range(streams.n_items)}
    config = SketchConfig(sketch_size=2, inner_steps=1, eval_batch_users=2)
    metrics = evaluate_sketch(model, ReservoirDecider(), streams, config)
    targets = [int(i) for row in range(5) for i in streams.stream(row)[0][1:]]
    ranks = np.array([rank_of[i] for i in targets])
    assert metrics.events == len(targets) == 25
    assert metrics["recall@20"] == pytest.approx(np.mean(ranks <= 20))
    assert metrics["mrr@20"] == pytest.approx(np.mean(np.where(ranks <= 20, 1.0 / ranks, 0.0)))


@pytest.mark.parametrize("method", ["random", "hardest", "influence", "dips1", "dips"])
def test_every_method_trains_on_implicit_streams(method: str) -> None:
    split = user_split(_implicit_streams(users=60, length=10, items=20), seed=0)
    config = SketchConfig(
        sketch_size=2,
        epochs=1,
        batch_users=16,
        queue_size=3,
        sampled_items=8,
        model_state_features=method.startswith("dips"),
    )
    result = train_sketch(split.train, split.valid, method, config)
    assert 0.0 <= result.best_valid["mrr@20"] <= result.best_valid["recall@20"] <= 1.0
    # 20 items: every next item ranks within the top 20
    assert result.best_valid["recall@20"] == pytest.approx(1.0)
