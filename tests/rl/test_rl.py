from __future__ import annotations

import numpy as np
import pytest
import torch

from leanrec.rl import (
    OrnsteinUhlenbeckNoise,
    ReplayBuffer,
    TD3Agent,
    TD3Config,
    make_noise,
    random_walk,
)


def test_random_walk_stays_in_bounds_and_steps_at_most_t() -> None:
    rng = np.random.default_rng(0)
    start = np.array([1, 64, 128, 3, 126] * 200)
    walk = random_walk(start, low=1, high=128, threshold=5, length=5, rng=rng)
    assert walk.shape == (1000, 6)
    assert (walk[:, 0] == start).all()
    assert walk.min() >= 1 and walk.max() <= 128
    steps = np.abs(np.diff(walk, axis=1))
    assert steps.min() >= 1 and steps.max() <= 5


def test_random_walk_transition_probability_is_proportional_to_distance() -> None:
    # from the middle: p(step = ±s) = s / (2 * (1+2+3)) for t = 3
    rng = np.random.default_rng(1)
    walk = random_walk(np.full(120_000, 50), low=1, high=100, threshold=3, length=1, rng=rng)
    step = walk[:, 1] - 50
    for s in (1, 2, 3):
        for sign in (-1, 1):
            assert np.mean(step == sign * s) == pytest.approx(s / 12, abs=0.005)


def test_random_walk_at_the_lower_bound_only_moves_up() -> None:
    # from 1 with t = 2 the neighbours are 2 and 3, with probabilities 1/3 and 2/3
    rng = np.random.default_rng(2)
    walk = random_walk(np.ones(60_000, dtype=np.int64), 1, 10, 2, 1, rng)
    assert set(np.unique(walk[:, 1])) == {2, 3}
    assert np.mean(walk[:, 1] == 3) == pytest.approx(2 / 3, abs=0.01)


def test_noises_have_the_requested_spread() -> None:
    rng = np.random.default_rng(3)
    for kind in ("gaussian", "uniform"):
        sample = make_noise(kind, 6.0).sample(200_000, rng)
        assert sample.std() == pytest.approx(6.0, rel=0.02)
        assert abs(sample.mean()) < 0.05
    with pytest.raises(ValueError, match="unknown noise"):
        make_noise("pink", 1.0)


def test_ou_noise_is_correlated_and_resumable() -> None:
    rng = np.random.default_rng(4)
    noise = OrnsteinUhlenbeckNoise(1.0)
    a = noise.sample(50_000, rng)
    b = noise.sample(50_000, rng)
    # b = (1 - θ) a + N(0, 1) with a ~ N(0, 1): corr = 0.85 / sqrt(0.85² + 1)
    assert np.corrcoef(a, b)[0, 1] == pytest.approx(0.85 / np.sqrt(1.7225), abs=0.01)
    saved = noise.state_dict()
    other = OrnsteinUhlenbeckNoise(1.0)
    other.load_state_dict(saved)
    rng_a, rng_b = np.random.default_rng(5), np.random.default_rng(5)
    assert np.array_equal(noise.sample(10, rng_a), other.sample(10, rng_b))


def test_replay_buffer_wraps_and_round_trips() -> None:
    buffer = ReplayBuffer(capacity=5, state_dim=2)
    states = np.arange(14, dtype=np.float32).reshape(7, 2)
    buffer.add(states, np.arange(7), np.arange(7), states + 100, 0.0)
    assert len(buffer) == 5
    # the oldest two were overwritten: rewards 5, 6 sit at slots 0, 1
    assert buffer.rewards.tolist() == [5, 6, 2, 3, 4]
    other = ReplayBuffer(capacity=5, state_dim=2)
    other.load_state_dict(buffer.state_dict())
    rng_a, rng_b = np.random.default_rng(0), np.random.default_rng(0)
    a, b = buffer.sample(4, rng_a), other.sample(4, rng_b)
    assert torch.equal(a.states, b.states) and torch.equal(a.rewards, b.rewards)
    with pytest.raises(ValueError, match="empty"):
        ReplayBuffer(3, 2).sample(1, rng_a)


def test_td3_learns_a_one_step_bandit() -> None:
    """Reward -(a - 3 s)^2 on s in [0, 1], a in [0, 4]: the actor must learn a ≈ 3 s."""
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    agent = TD3Agent(
        1, 1, low=0.0, high=4.0, config=TD3Config(hidden=32, actor_lr=3e-3, critic_lr=3e-3)
    )
    buffer = ReplayBuffer(20_000, 1)
    for _ in range(30):
        states = rng.random((256, 1)).astype(np.float32)
        actions = np.clip(
            agent.act(torch.from_numpy(states)).numpy() + rng.normal(0, 0.5, (256, 1)), 0, 4
        )
        rewards = -((actions[:, 0] - 3 * states[:, 0]) ** 2)
        buffer.add(states, actions, rewards.astype(np.float32), states, 1.0)
        for _ in range(20):
            agent.update(buffer.sample(128, rng))
    probe = torch.tensor([[0.2], [0.5], [0.9]])
    learned = agent.act(probe)[:, 0]
    assert torch.allclose(learned, 3 * probe[:, 0], atol=0.3)
    assert agent.actor(probe).min() >= 0 and agent.actor(probe).max() <= 4


def test_td3_full_state_round_trip() -> None:
    torch.manual_seed(0)
    agent = TD3Agent(3, 1, 1.0, 128.0)
    other = TD3Agent(3, 1, 1.0, 128.0)
    other.load_full_state(agent.full_state())
    states = torch.rand(4, 3)
    assert torch.equal(agent.act(states), other.act(states))
