"""DiPS pieces: relaxations, sketch state invariants, baselines, the Eq. 10 surrogate, training."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from leanrec.data.interactions import Interactions
from leanrec.data.streams import UserStreams, user_split
from leanrec.search.sketch import SketchConfig, SketchNCF, SketchScorer, train_sketch
from leanrec.search.sketch.baselines import HardestDecider, InfluenceDecider, ReservoirDecider
from leanrec.search.sketch.model import removal_distribution, topk_projection
from leanrec.search.sketch.policy import LearnedDecider, keep_weights
from leanrec.search.sketch.streaming import DecisionInputs, SketchState, StreamBatch
from leanrec.search.sketch.trainer import evaluate_sketch, queue_surrogate


# ---------------------------------------------------------------------------------- relaxations
def test_topk_projection_mass_range_and_implicit_gradient() -> None:
    scores = torch.tensor([[2.0, -1.0, 0.5, 0.0, 3.0], [1.0, 1.0, 1.0, 0.0, 0.0]])
    valid = torch.tensor([[True] * 5, [True, True, True, False, False]])
    u = topk_projection(scores, valid, 2)
    assert torch.allclose(u.sum(dim=1), torch.tensor([2.0, 2.0]), atol=1e-5)
    assert torch.all((u[valid] > 0) & (u[valid] < 1))
    assert torch.allclose(u[1, :3], torch.full((3,), 2 / 3), atol=1e-5)  # equal scores share
    assert torch.all(u[~valid] == 0)
    # the gradient is the implicit-function one: du_i/df_j = s_i (δ_ij - s_j / Σ s)
    f = scores[:1].clone().requires_grad_(True)
    out = topk_projection(f, valid[:1], 2)
    (row,) = torch.autograd.grad(out[0, 0], f)
    s = (out * (1 - out)).detach()[0]
    expected = s[0] * (torch.eye(5)[0] - s / s.sum())
    assert torch.allclose(row[0], expected, atol=1e-5)
    # finite differences agree
    eps = 1e-3
    bumped = scores[:1].clone()
    bumped[0, 2] += eps
    numeric = (topk_projection(bumped, valid[:1], 2)[0, 0] - out[0, 0].detach()) / eps
    assert abs(float(numeric) - float(row[0, 2])) < 1e-3


def test_topk_projection_keeps_everything_when_at_most_k_valid() -> None:
    u = topk_projection(torch.randn(1, 4), torch.tensor([[True, True, False, False]]), 3)
    assert u.tolist() == [[1.0, 1.0, 0.0, 0.0]]


def test_removal_distribution_is_softmax_of_minus_scores_over_valid() -> None:
    scores = torch.tensor([[0.0, 1.0, 2.0]])
    p = removal_distribution(scores, torch.tensor([[True, True, False]]))
    e = np.exp([0.0, -1.0])
    assert np.allclose(p[0, :2].numpy(), e / e.sum())
    assert float(p[0, 2]) == 0.0
    w = keep_weights(scores, torch.tensor([[True, True, True]]), 2, online=True)
    assert torch.allclose(w.sum(), torch.tensor(2.0))


# ---------------------------------------------------------------------------------- the state
def _batch(lengths: list[int], n_items: int = 30, seed: int = 0) -> StreamBatch:
    rng = np.random.default_rng(seed)
    width = max(lengths)
    items = torch.from_numpy(rng.integers(0, n_items, (len(lengths), width)))
    ratings = torch.from_numpy(rng.integers(1, 6, (len(lengths), width)).astype(np.float32))
    return StreamBatch(items, ratings, torch.tensor(lengths))


def _run(decider, batch: StreamBatch, k: int, tau: int, model: SketchNCF | None = None):
    model = model or SketchNCF(30, 4, 4)
    state = SketchState(batch, k, tau)
    generator = torch.Generator().manual_seed(0)
    history = []
    for step in range(batch.width):
        active = step < batch.lengths
        _, items, ratings, z = state.sketch()
        theta = model.adapt(items, ratings, z, 1, 0.1, False)
        if state.observe(step, active):
            cands = state.candidates(step)
            if state.needs_decision(cands):
                keep = decider.keep(DecisionInputs(cands, k, model, theta, None, generator, False))
                state.apply(cands, keep)
            else:
                state.keep_everything(cands)
        history.append(state.slots.clone())
    return history


@pytest.mark.parametrize("tau", [1, 3])
@pytest.mark.parametrize(
    "decider", [ReservoirDecider(), HardestDecider(), InfluenceDecider()], ids=lambda d: d.name
)
def test_sketch_never_exceeds_k_and_holds_distinct_past_events(decider, tau: int) -> None:
    k = 3
    batch = _batch([10, 4, 7, 1])
    history = _run(decider, batch, k, tau)
    for step, slots in enumerate(history):
        assert slots.shape == (4, k)
        for row, length in zip(slots.tolist(), batch.lengths.tolist(), strict=True):
            held = [p for p in row if p >= 0]
            assert len(held) == len(set(held)) <= k
            assert all(p <= step and p < length for p in held)
            if tau == 1:  # online: nothing is dropped until the sketch is full
                assert len(held) == min(k, step + 1, length)
        if (step + 1) % tau != 0:  # batch: the sketch only changes every τ steps
            previous = history[step - 1] if step else torch.full_like(slots, -1)
            assert torch.equal(slots, previous)


def test_reservoir_keeps_every_past_event_with_probability_k_over_t() -> None:
    k, length, users = 4, 20, 3000
    batch = _batch([length] * users, seed=1)
    final = _run(ReservoirDecider(), batch, k, 1)[-1]
    counts = np.bincount(final.flatten().numpy(), minlength=length)
    frequency = counts / users
    assert np.all(np.abs(frequency - k / length) < 0.035), frequency


def test_hardest_keeps_the_largest_losses() -> None:
    model = SketchNCF(5, 2, 2)
    with torch.no_grad():
        model.item_embedding.weight.zero_()
        model.item_bias.weight.zero_()
        model.user_init.zero_()
        for p in model.mlp.parameters():  # type: ignore[union-attr]
            p.zero_()
        model.global_mean.fill_(3.0)  # every prediction is 3.0
    batch = StreamBatch(
        torch.tensor([[0, 1, 2, 3]]), torch.tensor([[1.0, 3.0, 5.0, 4.0]]), torch.tensor([4])
    )
    final = _run(HardestDecider(), batch, 2, 1, model)[-1]
    # losses (r - 3)^2: 4, 0, 4, 1 -> events 0 and 2 stay
    assert sorted(final[0].tolist()) == [0, 2]


# ---------------------------------------------------------------------------------- Eq. 10
def test_queue_surrogate_with_one_decision_is_the_straight_through_gradient() -> None:
    torch.manual_seed(0)
    scorer = SketchScorer(10, 4, 8)
    batch = _batch([6, 6], n_items=10)
    state = SketchState(batch, 2, 1, removed_memory=1)
    for step in range(3):
        state.observe(step, torch.tensor([True, True]))
        cands = state.candidates(step)
        if state.needs_decision(cands):
            state.apply(
                cands,
                LearnedDecider(scorer, True).keep(
                    DecisionInputs(
                        cands,
                        2,
                        SketchNCF(10, 4, 4),
                        torch.zeros(2, 5),
                        None,
                        torch.Generator().manual_seed(0),
                        False,
                    )
                ),
            )
        else:
            state.keep_everything(cands)
    # one decision at step 2 over candidates `cands`; ℓ = Σ_e c_e z_e for fixed c
    positions, _, _, z = state.sketch()
    c = torch.randn(positions.shape)
    # reference: z_e = hard_e + u_e - sg(u_e) for the candidates of the decision
    scores = scorer.score(cands)
    u = keep_weights(scores, cands.valid, 2, online=True)
    match = (cands.positions.unsqueeze(-1) == positions.unsqueeze(1)) & (positions >= 0).unsqueeze(
        1
    )
    soft = (match * (u - u.detach()).unsqueeze(-1)).sum(1)
    reference = (c * (z + soft)).sum()
    ref_grads = torch.autograd.grad(reference, list(scorer.parameters()), allow_unused=True)
    surrogate = queue_surrogate(scorer, [cands], positions, c, 2, True)
    got = torch.autograd.grad(surrogate, list(scorer.parameters()), allow_unused=True)
    for a, b in zip(ref_grads, got, strict=True):
        if a is None:
            assert b is None or torch.all(b == 0)
        else:
            assert torch.allclose(a, b, atol=1e-6)


# ---------------------------------------------------------------------------------- training
def _synthetic_streams(users: int = 60, length: int = 12, items: int = 15) -> UserStreams:
    rng = np.random.default_rng(3)
    user_ids = np.repeat(np.arange(users), length)
    item_ids = rng.integers(0, items, len(user_ids))
    ratings = np.clip(np.rint(3 + (item_ids % 3) - 1 + rng.normal(0, 0.3, len(user_ids))), 1, 5)
    data = Interactions.from_raw(
        user_ids, item_ids, ratings=ratings, timestamps=np.tile(np.arange(length), users)
    )
    return UserStreams.from_interactions(data, min_length=2)


def test_adapt_with_zero_weights_stays_at_the_global_init() -> None:
    model = SketchNCF(5, 3, 3)
    items = torch.tensor([[0, 1]])
    theta = model.adapt(items, torch.ones(1, 2), torch.zeros(1, 2), 3, 0.5, False)
    assert torch.allclose(theta[0], model.user_init.detach())


@pytest.mark.parametrize("method", ["random", "dips"])
def test_training_resumes_to_the_same_model(tmp_path, method: str) -> None:
    split = user_split(_synthetic_streams(), seed=0)
    config = SketchConfig(sketch_size=2, epochs=2, batch_users=16, queue_size=3)
    straight = train_sketch(split.train, split.valid, method, config)
    first = SketchConfig(sketch_size=2, epochs=1, batch_users=16, queue_size=3)
    path = tmp_path / "state.pt"
    train_sketch(split.train, split.valid, method, first, checkpoint_path=path)
    resumed = train_sketch(split.train, split.valid, method, config, checkpoint_path=path)
    assert resumed.history == straight.history
    for (name, a), b in zip(
        straight.model.state_dict().items(), resumed.model.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), name
    metrics = evaluate_sketch(resumed.model, resumed.decider(True), split.test, config)
    assert metrics.events == int((split.test.lengths - 1).sum())
    assert 0.0 < metrics["rmse"] < 3.0
