"""DiPS policies that read the base model's state: features, start point, training, saving."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from leanrec.data.interactions import Interactions
from leanrec.data.streams import UserStreams, user_split
from leanrec.search.sketch import SketchConfig, SketchNCF, SketchScorer, train_sketch
from leanrec.search.sketch.baselines import (
    InfluenceDecider,
    RecentDecider,
    candidate_losses,
    influence_scores,
    model_state_features,
)
from leanrec.search.sketch.policy import LearnedDecider
from leanrec.search.sketch.policy_io import load_policy, save_policy
from leanrec.search.sketch.sketcher import StreamingSketcher
from leanrec.search.sketch.streaming import DecisionInputs, SketchState, StreamBatch
from leanrec.search.sketch.trainer import _decide
from tests.search.sketch.streams import random_batch


def _final_sketch(decider, batch: StreamBatch, model: SketchNCF, k: int, tau: int) -> torch.Tensor:
    state = SketchState(batch, k, tau)
    generator = torch.Generator().manual_seed(0)
    for step in range(batch.width):
        active = step < batch.lengths
        _, items, ratings, z = state.sketch()
        theta = model.adapt(items, ratings, z, 2, 0.3, False)
        if state.observe(step, active):
            _decide(state, step, decider, model, theta, None, generator, False, None)
    return state.slots


def test_features_are_the_transformed_loss_and_influence() -> None:
    torch.manual_seed(0)
    model = SketchNCF(30, 4, 4)
    batch = random_batch([6, 6])
    state = SketchState(batch, 3, 1)
    for step in range(3):  # the sketch fills up: nothing to decide yet
        assert state.observe(step, torch.tensor([True, True]))
        state.keep_everything(state.candidates(step))
    _, items, ratings, z = state.sketch()
    theta = model.adapt(items, ratings, z, 2, 0.3, False)
    assert state.observe(3, torch.tensor([True, True]))
    cands = state.candidates(3)  # 3 sketch events and the new one
    inputs = DecisionInputs(cands, 3, model, theta, None, torch.Generator(), False)
    features = model_state_features(inputs)
    assert features.shape == (*cands.valid.shape, 2)
    losses = model.item_losses(theta, cands.items, cands.ratings).detach()
    influence = influence_scores(inputs)
    valid = cands.valid
    torch.testing.assert_close(features[..., 0][valid], torch.log1p(losses)[valid])
    expected = torch.sign(influence) * torch.log1p(influence.abs())
    torch.testing.assert_close(features[..., 1][valid], expected[valid])
    assert (features[~valid] == 0).all()
    torch.testing.assert_close(candidate_losses(inputs), losses)


@pytest.mark.parametrize("tau", [1, 3])
def test_a_fresh_state_policy_decides_exactly_as_influence(tau: int) -> None:
    torch.manual_seed(0)
    model = SketchNCF(30, 4, 4)
    batch = random_batch([12, 7, 9, 3], seed=2)
    scorer = SketchScorer(30, 4, 8, explicit=True, state_features=2)
    learned = LearnedDecider(scorer, online=tau == 1)
    assert learned.needs_model_state
    ours = _final_sketch(learned, batch, model, 3, tau)
    reference = _final_sketch(InfluenceDecider(), batch, model, 3, tau)
    assert torch.equal(ours.sort(dim=1).values, reference.sort(dim=1).values)


@pytest.mark.parametrize("tau", [1, 3])
def test_a_strong_recency_prior_starts_the_policy_as_a_sliding_window(tau: int) -> None:
    torch.manual_seed(0)
    model = SketchNCF(30, 4, 4)
    batch = random_batch([12, 7, 9, 3], seed=2)
    scorer = SketchScorer(30, 4, 8, explicit=True, state_features=2, recency_prior=1e4)
    ours = _final_sketch(LearnedDecider(scorer, online=tau == 1), batch, model, 3, tau)
    reference = _final_sketch(RecentDecider(), batch, model, 3, tau)
    assert torch.equal(ours.sort(dim=1).values, reference.sort(dim=1).values)
    influence = _final_sketch(InfluenceDecider(), batch, model, 3, tau)
    assert not torch.equal(reference.sort(dim=1).values, influence.sort(dim=1).values)


def test_a_negative_recency_prior_is_refused() -> None:
    with pytest.raises(ValueError, match="recency_prior"):
        SketchScorer(10, 4, 8, recency_prior=-1.0)


def test_a_state_policy_without_features_is_refused() -> None:
    scorer = SketchScorer(10, 4, 8, state_features=2)
    items = torch.zeros(1, 3, dtype=torch.long)
    with pytest.raises(ValueError, match="model-state features"):
        scorer(items, torch.ones(1, 3), torch.zeros(1, 3), torch.zeros(1, 3), torch.ones(1, 3))


def _streams(users: int = 60, items: int = 25, length: int = 14) -> UserStreams:
    rng = np.random.default_rng(0)
    user_ids = np.repeat(np.arange(users), length)
    item_ids = rng.integers(0, items, users * length)
    ratings = rng.integers(1, 6, users * length).astype(np.float64)
    data = Interactions.from_raw(
        user_ids, item_ids, ratings=ratings, timestamps=np.tile(np.arange(length), users)
    )
    return UserStreams.from_interactions(data, min_length=2)


@pytest.mark.parametrize("method", ["dips", "dips1"])
def test_state_policies_train_save_and_load_but_do_not_stream(tmp_path, method: str) -> None:
    split = user_split(_streams(), seed=0)
    prior = 0.5 if method == "dips1" else 0.0
    config = SketchConfig(
        sketch_size=2,
        epochs=2,
        batch_users=16,
        queue_size=3,
        model_state_features=True,
        recency_prior=prior,
    )
    result = train_sketch(split.train, split.valid, method, config)
    assert result.scorer is not None and result.scorer.state_features == 2
    skip = result.scorer.recency_skip
    if prior:  # the recency weight is learned from -β
        assert skip is not None and float(skip.detach()) != -prior
    else:
        assert skip is None
    assert np.isfinite(result.best_valid["rmse"])
    path = save_policy(result.scorer, config, method, tmp_path / "policy.pt")
    loaded, meta = load_policy(path)
    assert meta["state_features"] == 2
    assert result.scorer.state_dict().keys() == loaded.state_dict().keys()
    for a, b in zip(result.scorer.state_dict().values(), loaded.state_dict().values()):
        assert torch.equal(a, b)
    with pytest.raises(ValueError, match="runs next to its model"):
        StreamingSketcher.from_policy(path, n_users=4)
