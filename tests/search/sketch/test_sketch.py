"""DiPS pieces: relaxations, sketch state invariants, baselines, the Eq. 10 surrogate, training."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from leanrec.data.interactions import Interactions
from leanrec.data.streams import UserStreams, user_split
from leanrec.search.sketch import SketchConfig, SketchNCF, SketchScorer, train_sketch
from leanrec.search.sketch.baselines import (
    HardestDecider,
    InfluenceDecider,
    RecentDecider,
    ReservoirDecider,
)
from leanrec.search.sketch.model import removal_distribution, topk_projection
from leanrec.search.sketch.policy import (
    LearnedDecider,
    QueuePolicyGradient,
    keep_weights,
    queue_surrogate,
    standardised_scores,
)
from leanrec.search.sketch.streaming import DecisionInputs, SketchState, StreamBatch
from leanrec.search.sketch.trainer import evaluate_sketch
from tests.search.sketch.streams import random_batch


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
    "decider",
    [ReservoirDecider(), HardestDecider(), InfluenceDecider(), RecentDecider()],
    ids=lambda d: d.name,
)
def test_sketch_never_exceeds_k_and_holds_distinct_past_events(decider, tau: int) -> None:
    k = 3
    batch = random_batch([10, 4, 7, 1])
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
    batch = random_batch([length] * users, seed=1)
    final = _run(ReservoirDecider(), batch, k, 1)[-1]
    counts = np.bincount(final.flatten().numpy(), minlength=length)
    frequency = counts / users
    assert np.all(np.abs(frequency - k / length) < 0.035), frequency


@pytest.mark.parametrize("tau", [1, 3])
def test_recent_keeps_the_k_newest_committed_events(tau: int) -> None:
    k = 3
    batch = random_batch([10, 4, 7, 1])
    history = _run(RecentDecider(), batch, k, tau)
    for step, slots in enumerate(history):
        committed = (step + 1) // tau * tau  # events 0 .. committed-1 have been decided on
        for row, length in zip(slots.tolist(), batch.lengths.tolist(), strict=True):
            seen = min(committed, length)
            expected = list(range(max(0, seen - k), seen))
            assert sorted(p for p in row if p >= 0) == expected, (step, row)


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
    batch = random_batch([6, 6], n_items=10)
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


def test_the_learning_rule_sums_the_per_step_surrogates_of_its_queue() -> None:
    torch.manual_seed(0)
    scorer = SketchScorer(10, 4, 8)
    config = SketchConfig(sketch_size=2, update_period=1)
    learner = QueuePolicyGradient(scorer, config, queue_size=2)
    learner.start_batch()
    assert learner.removed_memory == 2 and not learner.has_decisions
    batch = random_batch([6, 6], n_items=10)
    state = SketchState(batch, 2, 1, removed_memory=2)
    decider = LearnedDecider(scorer, True)
    decisions = []
    for step in range(5):
        state.observe(step, torch.tensor([True, True]))
        cands = state.candidates(step)
        if state.needs_decision(cands):
            inputs = DecisionInputs(cands, 2, None, None, None, torch.Generator(), False)
            state.apply(cands, decider.keep(inputs))
            decisions.append(cands)
        else:
            state.keep_everything(cands)
    assert len(decisions) == 3  # steps 2, 3, 4
    positions = state.sketch()[0]
    v_first, v_second = torch.randn(positions.shape), torch.randn(positions.shape)
    # v read with decisions 0 and 1 queued, then with 1 and 2 (Q = 2: decision 0 drops out)
    learner.remember(decisions[0])
    learner.remember(decisions[1])
    learner.accumulate(positions, v_first)
    learner.remember(decisions[2])
    learner.accumulate(positions, v_second)
    expected = queue_surrogate(scorer, decisions[:2], positions, v_first, 2, True)
    expected = expected + queue_surrogate(scorer, decisions[1:], positions, v_second, 2, True)
    got = learner.surrogate()
    assert got is not None
    torch.testing.assert_close(got, expected)
    parameters = list(scorer.parameters())
    want = torch.autograd.grad(expected, parameters, allow_unused=True)
    have = torch.autograd.grad(got, parameters, allow_unused=True)
    for a, b in zip(want, have, strict=True):
        assert (a is None) == (b is None)
        if a is not None:
            torch.testing.assert_close(a, b)
    before = [p.detach().clone() for p in parameters]
    learner.update()  # one Adam step on Φ; nothing is left to back-propagate
    assert learner.surrogate() is None
    assert any(not torch.equal(a, p) for a, p in zip(before, parameters, strict=True))


def test_standardised_scores_by_hand_and_invariant_to_scale_and_shift() -> None:
    scores = torch.tensor([[1.0, 2.0, 3.0, 100.0]])
    valid = torch.tensor([[True, True, True, False]])
    by_hand = torch.tensor([[-(1.5**0.5), 0.0, 1.5**0.5, 0.0]])  # mean 2, spread (2/3)^0.5
    torch.testing.assert_close(standardised_scores(scores, valid), by_hand)
    torch.testing.assert_close(standardised_scores(7.0 * scores - 3.0, valid), by_hand)


@pytest.mark.parametrize("online", [True, False])
def test_a_standardised_surrogate_gives_no_gradient_to_sharpening(online: bool) -> None:
    torch.manual_seed(0)
    base = torch.randn(6, 5)
    valid = torch.ones(6, 5, dtype=torch.bool)
    valid[0, 4] = False
    grads = torch.randn(6, 5)
    scale = torch.tensor(1.3, requires_grad=True)
    for standardise in (False, True):
        scores = scale * base
        if standardise:
            scores = standardised_scores(scores, valid)
        surrogate = (grads * keep_weights(scores, valid, 2, online)).sum()
        (d_scale,) = torch.autograd.grad(surrogate, scale)
        if standardise:
            assert abs(float(d_scale)) < 1e-5
        else:
            assert abs(float(d_scale)) > 1e-3


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


def test_remembered_removed_events_do_not_change_the_adapted_user() -> None:
    torch.manual_seed(1)
    model = SketchNCF(6, 3, 3)
    items, ratings = torch.tensor([[0, 1]]), torch.tensor([[5.0, 1.0]])
    alone = model.adapt(items, ratings, torch.ones(1, 2), 2, 0.5, False)
    padded = model.adapt(
        torch.tensor([[0, 1, 2, 3]]),
        torch.tensor([[5.0, 1.0, 3.0, 4.0]]),
        torch.tensor([[1.0, 1.0, 0.0, 0.0]]),
        2,
        0.5,
        False,
        sketch_size=2,
    )
    assert torch.allclose(alone, padded, atol=1e-6)
    # one step by hand: θ1 = Θ - α ∇ (Σ z ℓ) / K
    theta0 = model.user_init.detach().clone().unsqueeze(0).requires_grad_(True)
    loss = model.item_losses(theta0, items, ratings).sum() / 2
    (grad,) = torch.autograd.grad(loss, theta0)
    one = model.adapt(items, ratings, torch.ones(1, 2), 1, 0.5, False)
    assert torch.allclose(one, theta0.detach() - 0.5 * grad, atol=1e-6)


# ---------------------------------------------------------------------------------- operator
@pytest.mark.parametrize("tau", [1, 2])
@pytest.mark.parametrize("policy", ["learned", "learned with recency prior", "reservoir"])
def test_streaming_sketcher_matches_the_batched_streams(tmp_path, tau: int, policy: str) -> None:
    from leanrec.search.sketch.policy_io import load_policy, save_policy
    from leanrec.search.sketch.sketcher import StreamingSketcher

    torch.manual_seed(0)
    k, lengths = 3, [9, 5, 12, 2]
    batch = random_batch(lengths, n_items=30, seed=4)
    learned = policy != "reservoir"
    scorer = SketchScorer(30, 4, 8, recency_prior=0.7 if "recency" in policy else 0.0)
    if learned:
        path = save_policy(
            scorer, SketchConfig(sketch_size=k, update_period=tau), "dips", tmp_path / "p.pt"
        )
        scorer, meta = load_policy(path)
        assert (meta["sketch_size"], meta["update_period"]) == (k, tau)
        sketcher = StreamingSketcher.from_policy(path, n_users=len(lengths))
        decider = LearnedDecider(scorer, tau == 1)
    else:
        sketcher = StreamingSketcher(len(lengths), k, tau, None, seed=0)
        decider = ReservoirDecider()
    # the batched streams flush a partial period when a stream ends; a streaming operator never
    # sees an end and holds those events as pending: compare after each user's last full period
    history = _run(decider, batch, k, tau) if learned else None
    # interleave the users' events in a scrambled order that keeps each user's time order
    rng = np.random.default_rng(0)
    owners = np.concatenate([np.full(n, u) for u, n in enumerate(lengths)])
    owners = owners[rng.permutation(len(owners))]
    cursor = np.zeros(len(lengths), dtype=int)
    positions = []
    for u in owners:
        positions.append(cursor[u])
        cursor[u] += 1
    positions = np.array(positions)
    items = batch.items.numpy()[owners, positions]
    ratings = batch.ratings.numpy()[owners, positions]
    sketcher.process(owners[:7], items[:7], ratings[:7])  # in two chunks
    sketcher.process(owners[7:], items[7:], ratings[7:])
    for user, length in enumerate(lengths):
        held_items, _ = sketcher.sketch(user)
        assert len(held_items) <= k
        if history is not None:
            reference = history[length // tau * tau - 1]
            expected = sorted(p for p in reference[user].tolist() if p >= 0)
            assert held_items.tolist() == batch.items[user, expected].tolist()
        elif tau == 1:
            assert len(held_items) == min(k, length)
    assert sketcher.state_bytes() == len(lengths) * ((k + tau) * (8 + 4 + 8) + 16)


@pytest.mark.parametrize("explicit", [True, False])
def test_closed_form_v_of_removed_events_matches_autograd_with_zero_weights(
    explicit: bool,
) -> None:
    torch.manual_seed(2)
    model = SketchNCF(8, 3, 5, explicit=explicit)
    pool = None if explicit else torch.tensor([1, 3, 6, 7])  # the implicit sampled softmax
    kept_items, kept_ratings = (
        torch.tensor([[0, 1], [2, 3]]),
        torch.tensor([[5.0, 2.0], [1.0, 4.0]]),
    )
    removed_items = torch.tensor([[4, 5, 6], [7, 0, 1]])
    removed_ratings = torch.tensor([[3.0, 1.0, 5.0], [2.0, 2.0, 4.0]])
    target, target_rating = torch.tensor([[6], [5]]), torch.tensor([[4.0], [1.0]])
    # reference: removed events inside the inner loss with weight 0
    weights = torch.cat([torch.ones(2, 2), torch.zeros(2, 3)], dim=1).requires_grad_(True)
    theta = model.adapt(
        torch.cat([kept_items, removed_items], 1),
        torch.cat([kept_ratings, removed_ratings], 1),
        weights,
        3,
        0.3,
        True,
        pool,
        sketch_size=2,
    )
    model.item_losses(theta, target, target_rating, pool).sum().backward()
    expected = weights.grad[:, 2:]
    # closed form from the trajectory of the kept events only
    kept_weights = torch.ones(2, 2, requires_grad=True)
    trajectory: list[torch.Tensor] = []
    theta = model.adapt(kept_items, kept_ratings, kept_weights, 3, 0.3, True, pool, 2, trajectory)
    for point in trajectory[1:]:
        point.retain_grad()
    model.item_losses(theta, target, target_rating, pool).sum().backward()
    got = model.removed_event_grads(
        trajectory, [p.grad for p in trajectory[1:]], removed_items, removed_ratings, 0.3, 2, pool
    )
    assert expected.abs().min() > 1e-4  # every removed event does matter
    assert torch.allclose(got, expected, atol=1e-5), (got, expected)
    assert torch.allclose(kept_weights.grad, weights.grad[:, :2], atol=1e-5)


# ---------------------------------------------------------------------------------- experiment
def test_experiment_writes_the_table_and_resumes(tmp_path) -> None:
    from leanrec.search.sketch import SketchExperiment, run_experiment

    exp = SketchExperiment(
        dataset="synthetic",
        out_dir=str(tmp_path / "run"),
        methods=("random", "dips1"),
        sketch_sizes=(2,),
        update_periods=(1, 2),
        seeds=(0, 1),
        config=SketchConfig(epochs=1, batch_users=16, queue_size=2),
    )
    streams = _synthetic_streams()
    result = run_experiment(exp, log=lambda _: None, streams=streams)
    summary = result.summary
    assert summary["rows"] == len(result.rows) == 2 * 2 * 2
    cell = next(c for c in summary["cells"] if c["method"] == "dips1" and c["tau"] == 2)
    assert cell["seeds"] == [0, 1]
    # mean and sample standard deviation (ddof = 1) of the two seeds' test RMSE, by hand
    first, second = (
        r["test"]["rmse"] for r in result.rows if r["method"] == "dips1" and r["tau"] == 2
    )
    assert first != second
    assert cell["metrics"]["rmse"]["mean"] == pytest.approx((first + second) / 2)
    assert cell["metrics"]["rmse"]["std"] == pytest.approx(abs(first - second) / np.sqrt(2))
    assert all(r["max_sketch_length"] == 2 for r in result.rows)  # K = 2, and it fills up
    table = (tmp_path / "run" / "table.md").read_text()
    assert result.table() == table
    assert "batch (τ = 2)" in table and "online (τ = 1)" in table
    assert (tmp_path / "run" / "metric_vs_k.png").stat().st_size > 0
    policy = tmp_path / "run" / "policy_dips1_K2_tau1.pt"
    assert result.artifacts == {
        "policy_dips1_K2_tau1": policy,
        "policy_dips1_K2_tau2": tmp_path / "run" / "policy_dips1_K2_tau2.pt",
    }
    rows_before = (tmp_path / "run" / "rows.json").read_text()
    again = run_experiment(exp, log=lambda _: None, streams=streams)
    assert again.summary["rows"] == summary["rows"]
    assert (tmp_path / "run" / "rows.json").read_text() == rows_before
    saved = again.save(tmp_path / "copy")
    assert (saved / "policy_dips1_K2_tau1.pt").read_bytes() == policy.read_bytes()


def test_methods_are_registered_in_the_default_table_order() -> None:
    from leanrec.search.sketch import METHODS, SketchExperiment
    from leanrec.search.sketch.config import DEFAULT_METHODS

    assert METHODS.names() == DEFAULT_METHODS == SketchExperiment().methods
    config = SketchConfig(queue_size=7)
    assert [METHODS[name].queue_size(config) for name in ("random", "dips", "dips1")] == [0, 7, 1]
    assert METHODS["random"].new_scorer(10, True, config) is None
    assert isinstance(METHODS["dips"].new_scorer(10, True, config), SketchScorer)
    with pytest.raises(ValueError, match="needs a trained SketchScorer"):
        METHODS["dips1"].decider(None, True)
    with pytest.raises(ValueError, match="unknown sketching method"):
        METHODS.resolve(["random", "reservoir"])


def test_item_biases_start_from_shrunk_mean_offsets_and_log_popularity() -> None:
    items = torch.tensor([0, 0, 1, 2, 2, 2])
    ratings = torch.tensor([5.0, 4.0, 1.0, 3.0, 3.0, 3.0])
    explicit = SketchNCF(4, dim=4, hidden=4, explicit=True, global_mean=3.0)
    explicit.init_item_biases(items, ratings, shrinkage=1.0)
    # item 0: (2 + 1) / (2 + 1); item 1: -2 / (1 + 1); item 2: 0 / 4; item 3 unseen: 0
    expected = torch.tensor([1.0, -1.0, 0.0, 0.0])
    assert torch.allclose(explicit.item_bias.weight[:, 0], expected)
    implicit = SketchNCF(4, dim=4, hidden=4, explicit=False)
    implicit.init_item_biases(items, None)
    assert torch.allclose(
        implicit.item_bias.weight[:, 0], torch.log(torch.tensor([3.0, 2.0, 4.0, 1.0]))
    )
    with pytest.raises(ValueError, match="ratings"):
        explicit.init_item_biases(items, None)
