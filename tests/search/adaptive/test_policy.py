"""The controller, its state, the session plan, the baselines' rules and forgetting protection:
numbers derived by hand in the comments."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from leanrec.data.events import EventStream
from leanrec.data.synthetic_stream import make_synthetic_stream
from leanrec.search.adaptive import METHODS, AdaptiveConfig, AdaptiveExperiment, Controller
from leanrec.search.adaptive.config import DEPTH_DELTAS, WIDTH_DELTAS
from leanrec.search.adaptive.policy import SessionObservation, total_variation
from leanrec.search.adaptive.session import NewUnitBoost, Protection, session_plan
from leanrec.search.adaptive.tower import (
    ArchitectureChange,
    build_model,
    hidden_linears,
    old_unit_masks,
    reshape,
    tower_of,
    widths_after,
    widths_of,
)
from leanrec.train.stream import StreamTrainer, StreamTrainerConfig


def observation(widths: tuple[int, ...] = (200, 80), **changes: float) -> SessionObservation:
    values = {
        "parameter_share": 0.137,
        "first_loss": 0.60,
        "first_auc": 0.70,
        "previous_loss": 0.58,
        "new_user_share": 0.1,
        "new_item_share": 0.05,
        "item_drift": 0.4,
        "label_drift": 0.02,
    }
    values.update(changes)
    return SessionObservation(widths=widths, **values)  # type: ignore[arg-type]


def test_total_variation_by_hand() -> None:
    # P = (1/2, 1/2), Q = (1/4, 3/4): ½ (|1/2 − 1/4| + |1/2 − 3/4|) = 1/4
    assert total_variation(np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1])) == pytest.approx(0.25)
    assert total_variation(np.array([0, 0]), np.array([1])) == pytest.approx(1.0)


def test_features_lay_out_widths_per_slot() -> None:
    config = AdaptiveConfig()
    features = observation((256, 64)).features(config)
    assert features.shape == (config.max_depth + 8,)
    # widths over 512, an empty third slot, depth 2/3, then p and the first loss
    np.testing.assert_allclose(features[:6], [0.5, 0.125, 0.0, 2 / 3, 0.137, 0.60], rtol=1e-6)
    assert features[6] == pytest.approx(10 * (0.60 - 0.58))


def test_the_untrained_policy_is_the_keep_prior() -> None:
    config = AdaptiveConfig()
    controller = Controller(config)
    widths = (200, 80)
    state = torch.from_numpy(observation(widths).features(config))
    keep = [WIDTH_DELTAS.index(0), WIDTH_DELTAS.index(0), DEPTH_DELTAS.index(0)]
    _, log_prob, _ = controller.network.distributions(state, widths, keep)
    # two width decisions at e²/(e² + 4), the depth at e²/(e² + 2)
    e2 = math.exp(2.0)
    expected = 2 * math.log(e2 / (e2 + 4)) + math.log(e2 / (e2 + 2))
    assert float(log_prob.detach()) == pytest.approx(expected, abs=1e-5)


def test_actions_leaving_the_limits_are_masked() -> None:
    network = Controller(AdaptiveConfig()).network
    slots, depth = network.masks((16, 512))
    assert slots[0] is not None and slots[1] is not None and slots[2] is None
    assert slots[0].tolist() == [False, False, True, True, True]  # 16 cannot shrink
    assert slots[1].tolist() == [True, True, True, False, False]  # 512 cannot grow
    assert depth.tolist() == [True, True, True]
    assert network.masks((64,))[1].tolist() == [False, True, True]  # depth 1: no removal
    assert network.masks((64, 64, 64))[1].tolist() == [True, True, False]


def test_sampled_changes_stay_within_the_limits() -> None:
    config = AdaptiveConfig(keep_prior=0.0)
    controller = Controller(config)
    rng = np.random.default_rng(0)
    for _ in range(200):
        depth = int(rng.integers(1, 4))
        widths = tuple(int(w) for w in rng.choice([16, 32, 200, 496, 512], depth))
        change = controller.decide(observation(widths))
        after = widths_after(widths, change)
        assert 1 <= len(after) <= 3
        assert all(16 <= w <= 512 for w in after), (widths, change)


def test_reinforce_raises_the_probability_of_a_rewarded_action() -> None:
    config = AdaptiveConfig(entropy_bonus=0.0)
    controller = Controller(config)
    seen = observation()
    change = controller.decide(seen)
    assert controller.pending is not None
    state, widths, actions, difficulty, keep_penalty = controller.pending
    assert difficulty == pytest.approx(0.70)  # the first chunk's AUC
    assert keep_penalty == pytest.approx(config.penalty * 0.137)
    s = torch.from_numpy(state)
    before = float(controller.network.distributions(s, widths, actions)[1].detach())
    stats = controller.learn(0.90)  # b = AUC₁ + V(s) = 0.70 + 0 (no reference AUC given)
    after = float(controller.network.distributions(s, widths, actions)[1].detach())
    # b = AUC₁ − λ p₀ + V(s), V = 0 at first
    assert stats["baseline"] == pytest.approx(0.70 - config.penalty * 0.137)
    assert stats["advantage"] == pytest.approx(0.90 - stats["baseline"])
    assert after > before, change


def test_reward_is_auc_minus_penalty_times_share() -> None:
    controller = Controller(AdaptiveConfig(penalty=0.05))
    assert controller.reward(0.75, 0.4) == pytest.approx(0.75 - 0.05 * 0.4)
    assert controller.reward(None, 0.0) == pytest.approx(0.5)


def test_controller_state_round_trips() -> None:
    config = AdaptiveConfig()
    first = Controller(config)
    for reward in (0.7, 0.72, 0.69):
        first.decide(observation())
        first.learn(reward)
    first.decide(observation())
    stats = first.learn(0.71, reference_auc=0.69)  # the reference's AUC replaces AUC₁
    assert stats["advantage"] == pytest.approx(0.71 - 0.69 - stats["baseline"] + 0.69)
    second = Controller(config)
    second.load_state_dict(first.state_dict())
    assert first.decide(observation()) == second.decide(observation())
    assert second.rewards == first.rewards
    keep = config.penalty * 0.137
    offsets = [0.70 - keep, 0.70 - keep, 0.70 - keep, 0.69 - keep]
    assert second.residuals == pytest.approx([r - o for r, o in zip(first.rewards, offsets)])


def test_session_plan_by_hand() -> None:
    stream = make_synthetic_stream(1000, n_users=50, n_items=40, seed=0)
    experiment = AdaptiveExperiment(sessions=3, warmup_sessions=4, chunk_size=100)
    sessions, plan = session_plan(experiment, stream, 200, evaluated=True)
    # warm-up 200 = 4 x 50; 800 = 267 + 267 + 266
    assert [(s.start, s.stop) for s in sessions] == [
        (0, 50), (50, 100), (100, 150), (150, 200), (200, 467), (467, 734), (734, 1000),
    ]  # fmt: skip
    assert [s.warmup for s in sessions] == [True] * 4 + [False] * 3
    assert [s.scored for s in sessions] == [False] + [True] * 6
    assert [len(c) for c in plan[sessions[4].first_chunk : sessions[4].stop_chunk]] == [
        100, 100, 67,
    ]  # fmt: skip
    assert [c.warmup for c in plan] == [True] + [False] * (len(plan) - 1)
    assert [c.index for c in plan] == list(range(len(plan)))
    assert sessions[-1].stop_chunk == len(plan)
    with pytest.raises(ValueError, match="sessions"):
        session_plan(AdaptiveExperiment(sessions=900), stream, 200, evaluated=True)


def test_old_unit_masks() -> None:
    change = ArchitectureChange((2, -1), depth_delta=1)
    masks = old_unit_masks((4, 3), change)
    assert [m.tolist() for m in masks] == [
        [True] * 4 + [False] * 2,
        [True, True],
        [False, False],  # the layer added at the end
    ]
    assert widths_after((4, 3), change) == (6, 2, 2)


def test_threshold_rule_and_always_grow() -> None:
    experiment = AdaptiveExperiment(loss_threshold=0.02, grow_units=16)
    config = AdaptiveConfig()
    rule = METHODS["loss_threshold"].decider(experiment, config)
    # (0.60 − 0.58) / 0.58 = 3.4% > 2%: grow every layer by 32
    assert rule.decide(observation()).change == ArchitectureChange((32, 32))
    # (0.55 − 0.58) / 0.58 = −5.2%: shrink every layer by 16
    assert rule.decide(observation(first_loss=0.55)).change == ArchitectureChange((-16, -16))
    assert rule.decide(observation(first_loss=0.585)).change is None  # +0.9%: keep
    grow = METHODS["always_grow"].decider(experiment, config)
    assert grow.decide(observation((200, 80, 40))).change == ArchitectureChange((16, 16, 16))
    assert METHODS["retrain_medium"].decider(experiment, config).decide(observation()).reset


def _trained(protection: str) -> tuple[StreamTrainer, EventStream, AdaptiveConfig]:
    experiment = AdaptiveExperiment(
        model="deepfm",
        controller=AdaptiveConfig(protection=protection, freeze_steps=100),  # type: ignore[arg-type]
    )
    model, _ = build_model(experiment, (8, 4), seed=0)
    stream = make_synthetic_stream(300, n_users=30, n_items=20, seed=1)
    model.extend_ids({f: stream.ids[f].n_ids for f in ("user", "item")})
    model.observe({f: torch.from_numpy(stream.ids[f].codes) for f in ("user", "item")})
    trainer = StreamTrainer(model, StreamTrainerConfig(learning_rate=1e-2, batch_size=32))
    return trainer, stream, experiment.controller


def _step(trainer: StreamTrainer, stream: EventStream) -> None:
    ids = {f: torch.from_numpy(stream.ids[f].codes[:64]) for f in ("user", "item")}
    loss = torch.nn.functional.binary_cross_entropy_with_logits(
        trainer.model(ids), torch.from_numpy(stream.label[:64])
    )
    trainer.dense_optimizer.zero_grad()
    loss.backward()
    trainer.dense_optimizer.step()


def test_freeze_keeps_old_units_and_trains_new_ones() -> None:
    trainer, stream, config = _trained("freeze")
    _step(trainer, stream)  # Adam has momentum on the old units before the change
    change = reshape(trainer, ArchitectureChange((4, 0)), torch.Generator().manual_seed(0))
    masks = old_unit_masks((8, 4), change)
    protection = Protection(config)
    protection.start(trainer.model, trainer, masks, grew=True, previous=stream)
    first, second = hidden_linears(trainer.model)
    old_rows = first.weight.detach()[:8].clone()
    new_rows = first.weight.detach()[8:].clone()
    old_into_second = second.weight.detach()[:, :8].clone()
    new_into_second = second.weight.detach()[:, 8:].clone()
    for _ in range(3):
        _step(trainer, stream)
    assert torch.equal(first.weight.detach()[:8], old_rows)
    assert torch.equal(second.weight.detach()[:, :8], old_into_second)
    # the new units and their connections into the next (old) layer learn
    assert not torch.equal(first.weight.detach()[8:], new_rows)
    assert not torch.equal(second.weight.detach()[:, 8:], new_into_second)
    protection.stop()
    _step(trainer, stream)  # hooks removed: the old units learn again
    assert not torch.equal(first.weight.detach()[:8], old_rows)
    assert widths_of(trainer.model) == (12, 4)


def test_boost_multiplies_the_step_of_grown_units_only() -> None:
    # two identical runs grown alike (8-4 to 12-6); one boosts the new units by 5: after one
    # step every entry of a new unit moved 5 times as far, every other entry exactly alike
    runs = []
    for boost in (1.0, 5.0):
        trainer, stream, _ = _trained("none")
        _step(trainer, stream)
        change = reshape(trainer, ArchitectureChange((4, 2)), torch.Generator().manual_seed(0))
        hook = NewUnitBoost(boost)
        hook.start(trainer.model, trainer, old_unit_masks((8, 4), change))
        tower = tower_of(trainer.model)
        assert tower.head is not None
        tensors = [*(p for lin in hidden_linears(trainer.model) for p in (lin.weight, lin.bias)),
                   tower.head.weight]  # fmt: skip
        before = [t.detach().clone() for t in tensors]
        _step(trainer, stream)
        runs.append([t.detach() - b for t, b in zip(tensors, before, strict=True)])
        hook.stop()
    plain, boosted = runs
    new = [torch.zeros_like(d, dtype=torch.bool) for d in plain]
    new[0][8:] = True  # first layer: rows of the 4 new units
    new[1][8:] = True  # their biases
    new[2][4:] = True  # second layer: rows of its 2 new units...
    new[2][:, 8:] = True  # ...and the columns reading the first layer's new units
    new[3][4:] = True
    offset = tower_of(trainer.model).head_offset
    new[4][:, offset + 4 : offset + 6] = True  # the head's columns of the 2 new last units
    for d_plain, d_boost, mask in zip(plain, boosted, new, strict=True):
        torch.testing.assert_close(d_boost[mask], 5.0 * d_plain[mask], rtol=1e-4, atol=1e-9)
        assert torch.equal(d_boost[~mask], d_plain[~mask])
    assert float(plain[2][:, 8:].abs().sum()) > 0  # the new columns did move


def test_ewc_adds_its_penalty_gradient_on_old_units_only() -> None:
    trainer, stream, config = _trained("ewc")
    change = reshape(trainer, ArchitectureChange((4, 0)), torch.Generator().manual_seed(0))
    protection = Protection(config)
    protection.start(trainer.model, trainer, old_unit_masks((8, 4), change), False, stream)
    first = hidden_linears(trainer.model)[0]
    fisher = protection._fisher(trainer.model, trainer, stream)[id(first.weight)]
    with torch.no_grad():
        first.weight.add_(0.5)  # θ − θ* = 0.5 everywhere
    ids = {f: torch.from_numpy(stream.ids[f].codes[:64]) for f in ("user", "item")}
    labels = torch.from_numpy(stream.label[:64])

    def gradient() -> torch.Tensor:
        first.weight.grad = None
        loss = torch.nn.functional.binary_cross_entropy_with_logits(trainer.model(ids), labels)
        loss.backward()
        assert first.weight.grad is not None
        return first.weight.grad.clone()

    penalised = gradient()
    protection.stop()
    plain = gradient()
    expected = 2 * config.ewc_strength * fisher * 0.5
    expected[8:] = 0.0  # new units are not anchored (the input's columns are all old)
    torch.testing.assert_close(penalised - plain, expected, rtol=1e-4, atol=1e-7)
    assert float(expected[:8].abs().sum()) > 0
