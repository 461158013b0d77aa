"""The Identity Agent: reward by hand, importance ratio and clip, a bandit, per-ID bytes, the
byte cap, and the saved model serving an ID it has never seen."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from leanrec.embeddings import HierarchicalSharedEmbedding
from leanrec.rl import ActorCriticConfig, BehaviourReplayBuffer, DiscreteActorCritic
from leanrec.rl.actor_critic import importance_ratio
from leanrec.search.shared_embedding import (
    AutoAssignConfig,
    IdentityAgent,
    load_stream_model,
    run_experiment,
)
from leanrec.search.shared_embedding.config import agent_preset
from leanrec.search.shared_embedding.policy import advantage
from tests.search.shared_embedding.test_contract import CAP, tiny_experiment, tiny_stream


def test_reward_is_the_mean_of_the_last_t_losses_minus_the_current_one() -> None:
    # T = 3; one ID with chunk losses 1.0, 0.5, 0.3, 0.2, 0.1. Rewards, by hand:
    #   chunk 2: mean(1.0) - 0.5 = 0.5
    #   chunk 3: mean(1.0, 0.5) - 0.3 = 0.45
    #   chunk 4: mean(1.0, 0.5, 0.3) - 0.2 = 0.4
    #   chunk 5: mean(0.5, 0.3, 0.2) - 0.1 = 0.2333 (the ring forgot 1.0)
    agent = IdentityAgent(("user",), AutoAssignConfig(levels=2, reward_window=3, batch_size=99))
    agent.extend({"user": 1})
    ids = torch.tensor([0])
    for count, loss in enumerate([1.0, 0.5, 0.3, 0.2, 0.1], start=1):
        seen = agent.observe("user", ids, torch.tensor([loss]), torch.tensor([count]),
                             torch.tensor([1]))  # fmt: skip
        agent.decide(seen)
    rewards = agent.replay.rewards[: len(agent.replay)]
    np.testing.assert_allclose(rewards, [0.5, 0.45, 0.4, 0.7 / 3 + 1e-9], atol=2e-3)
    # the stored next state is the state the next decision saw: its current-loss feature
    loss_column = agent.state_dim - 1 - 1  # [..., mean, has, loss, field one-hot (1)]
    np.testing.assert_allclose(
        agent.replay.next_states[:4, loss_column], [0.5, 0.3, 0.2, 0.1], atol=1e-3
    )


def test_importance_ratio_and_its_clip() -> None:
    # pi/b = 0.6/0.3 = 2.0 (at the clip), 0.9/0.3 = 3.0 -> clipped to 2.0, 0.1/0.5 = 0.2
    rho = importance_ratio(torch.tensor([0.6, 0.9, 0.1]), torch.tensor([0.3, 0.3, 0.5]), 2.0)
    np.testing.assert_allclose(rho.numpy(), [2.0, 2.0, 0.2], rtol=1e-6)


def test_actor_critic_learns_to_ascend_on_a_bandit_where_ascending_lowers_the_loss() -> None:
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    agent = DiscreteActorCritic(4, 3, ActorCriticConfig(gamma=0.0, actor_lr=3e-3, critic_lr=3e-3))
    replay = BehaviourReplayBuffer(5000, 4)
    for _ in range(150):
        states = torch.rand(64, 4)
        decisions = agent.act(states, rng)
        # the loss falls by 0.5 after an ascent, rises by 0.2 after a descent
        rewards = np.select([decisions.actions == 2, decisions.actions == 0], [0.5, -0.2], 0.0)
        next_states = torch.rand(64, 4).numpy()
        replay.add_with_behaviour(
            states.numpy(), decisions.actions, rewards.astype(np.float32), next_states,
            decisions.behaviour_probability,
        )  # fmt: skip
        batch, behaviour = replay.sample_with_behaviour(128, rng)
        agent.update_critic(batch)
        agent.update_actor(batch, behaviour)
    ascend = agent.probabilities(torch.rand(256, 4))[:, 2]
    assert float(ascend.mean()) > 0.8


def test_per_id_bytes_of_the_agent_count_into_the_embedding_bytes() -> None:
    agent = IdentityAgent(("user", "item"), AutoAssignConfig(reward_window=5))
    agent.extend({"user": 10, "item": 3})
    # per ID: 5 float16 losses (10) + head and fill (2) + open decision: count int32 (4),
    # mean float16 (2), has-history (1), position (1), action (1), probability float16 (2)
    assert agent.nbytes() == (10 + 2 + 11) * (10 + 3)
    agent.extend({"user": 11, "item": 3})  # the user arrays double to 20
    assert agent.nbytes() == 23 * (20 + 3)


def test_the_cap_binds_and_is_never_exceeded(tmp_path: Path, one_torch_thread: None) -> None:
    stream = tiny_stream()
    runs = {}
    for name, cap in (("free", None), ("capped", CAP)):
        experiment = tiny_experiment(
            tmp_path / name, 0, methods=("autoassign",),
            agent=AutoAssignConfig(max_bytes=cap, batch_size=64, replay_size=2000),
        )  # fmt: skip
        runs[name] = run_experiment(experiment, log=lambda _: None, stream=stream).rows[0]
    assert runs["free"]["max_embedding_bytes"] > CAP  # the cap is not vacuous
    assert runs["capped"]["max_embedding_bytes"] <= CAP
    unique = {k: sum(r["positions"][f][-1] for f in ("user", "item")) for k, r in runs.items()}
    assert unique["capped"] < unique["free"]


def test_saved_model_loads_predicts_the_same_and_serves_a_new_id_through_level_1(
    tmp_path: Path, one_torch_thread: None
) -> None:
    experiment = tiny_experiment(tmp_path / "run", 0, methods=("autoassign",))
    result = run_experiment(experiment, log=lambda _: None, stream=tiny_stream())
    loaded = load_stream_model(result.artifacts["model_autoassign_bce"])
    again = load_stream_model(result.artifacts["model_autoassign_bce"])
    users, items = loaded.raw_ids["user"][:5], loaded.raw_ids["item"][:5]
    np.testing.assert_array_equal(
        loaded.predict({"user": users, "item": items}),
        again.predict({"user": users, "item": items}),
    )
    known = len(loaded.raw_ids["user"])
    table = loaded.model.id_tables()["user"]
    assert isinstance(table, HierarchicalSharedEmbedding)
    assert int(table.position_counts()[-1]) > 0  # the assignment came back: unique IDs exist
    probability = loaded.predict({"user": ["never-seen"], "item": [items[0]]})
    assert probability.shape == (1,) and 0.0 < float(probability[0]) < 1.0
    new = torch.tensor([known])
    assert int(table.positions(new)[0]) == 0  # known now, not seen: reads level 1
    torch.testing.assert_close(table.lookup(new), table.shared[:1])


@pytest.mark.parametrize("bad", [{"levels": 0}, {"reward_window": 0}, {"exploration": 0.0}])
def test_config_refuses_bad_values(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        AutoAssignConfig(**bad)  # type: ignore[arg-type]


def test_advantage_subtracts_the_mean_reward_of_the_same_group() -> None:
    # group 1: rewards 0.3, 0.1 (mean 0.2) -> +0.1, -0.1; group 2: 0.5 alone -> 0.0;
    # group 4: -0.2, 0.4, 0.1 (mean 0.1) -> -0.3, +0.3, 0.0
    rewards = torch.tensor([0.3, -0.2, 0.1, 0.5, 0.4, 0.1])
    groups = torch.tensor([1, 4, 1, 2, 4, 4])
    np.testing.assert_allclose(
        advantage(rewards, groups).numpy(), [0.1, -0.3, -0.1, 0.0, 0.3, 0.0], atol=1e-6
    )
    assert advantage(torch.zeros(0), torch.zeros(0, dtype=torch.int64)).shape == (0,)


def test_the_advantage_reward_cancels_the_drift_shared_at_a_position() -> None:
    # Three users, T = 5. Chunk 1: losses 0.9, 0.7, 0.6 at positions 1, 1, 2 (no reward: no
    # decision is open). Chunk 2: losses 0.5, 0.6, 0.2. Paper rewards, by hand:
    #   user 0: 0.9 - 0.5 = 0.4; user 1: 0.7 - 0.6 = 0.1; user 2: 0.6 - 0.2 = 0.4.
    # Advantage (decisions grouped by the position they were taken at):
    #   position 1: mean(0.4, 0.1) = 0.25 -> +0.15, -0.15; position 2: 0.4 alone -> 0.
    ids = torch.tensor([0, 1, 2])
    positions = torch.tensor([1, 1, 2])
    rewards = {}
    for kind in ("paper", "advantage"):
        agent = IdentityAgent(("user",), AutoAssignConfig(levels=1, batch_size=99, reward=kind))
        agent.extend({"user": 3})
        for count, losses in enumerate(([0.9, 0.7, 0.6], [0.5, 0.6, 0.2]), start=1):
            seen = agent.observe("user", ids, torch.tensor(losses),
                                 torch.full((3,), count), positions)  # fmt: skip
            agent.decide(seen)
        rewards[kind] = agent.replay.rewards[: len(agent.replay)]
    np.testing.assert_allclose(rewards["paper"], [0.4, 0.1, 0.4], atol=2e-3)
    np.testing.assert_allclose(rewards["advantage"], [0.15, -0.15, 0.0], atol=2e-3)


def test_agent_presets_and_the_reward_literal() -> None:
    base = AutoAssignConfig(levels=2, seed=7)
    assert agent_preset(base, "paper") == base
    leanrec = agent_preset(base, "leanrec")
    assert (leanrec.levels, leanrec.seed) == (2, 7)  # the preset only sets its own fields
    assert leanrec.initial_logits == (-8.0, -4.0, 4.0) and leanrec.exploration == 0.001
    assert (leanrec.entropy_bonus, leanrec.reward) == (0.0, "advantage")
    assert (leanrec.history, leanrec.idle_after, leanrec.byte_penalty) == ("ema", 1, 0.3)
    assert (leanrec.shared_learning_rate, leanrec.residual_until) == (0.003, 0)
    assert (leanrec.idle_offers, leanrec.sweep_every, leanrec.park) == ("holders", 1, True)
    assert not leanrec.appearance_decisions
    assert not leanrec.descend_from_unique and leanrec.promoted_init == "random"
    paper = agent_preset(base, "paper")
    assert (paper.history, paper.idle_after, paper.byte_penalty) == ("window", 0, 0.0)
    assert (paper.idle_offers, paper.park) == ("all_idle", False)
    assert (paper.shared_learning_rate, paper.residual_until) == (0.0, 0)
    with pytest.raises(ValueError, match="preset"):
        agent_preset(base, "nope")
    with pytest.raises(ValueError, match="reward"):
        AutoAssignConfig(reward="loss")  # type: ignore[arg-type]


def test_the_leanrec_method_builds_its_agent_from_the_preset(tmp_path: Path) -> None:
    from leanrec.search.shared_embedding.baselines import METHODS
    from leanrec.search.shared_embedding.experiment import FIELDS, _build

    experiment = tiny_experiment(tmp_path, 0, agent=AutoAssignConfig(exploration=0.05))
    paper, leanrec = METHODS.resolve(["autoassign", "autoassign_leanrec"])
    configs = [
        _build(experiment, {f: 10 for f in FIELDS}, m, 1.0, 3, "bce").assigner.agent.config
        for m in (paper, leanrec)
    ]
    assert [(c.levels, c.seed, c.exploration) for c in configs] == [(1, 3, 0.05), (1, 3, 0.001)]


def test_without_descents_from_unique_a_row_is_kept_and_recorded_as_unchanged() -> None:
    # A prior that almost always descends: logits (5, -5, -5), ε = 0.3 -> behaviour
    # b = 0.7 π + 0.1 with π ≈ (1, 0, 0): b(descend) ≈ 0.8, b(unchanged) ≈ 0.1. IDs 0-49 are
    # unique (position k + 1 = 2), IDs 50-99 at level 1.
    config = AutoAssignConfig(
        levels=1, initial_logits=(5.0, -5.0, -5.0), exploration=0.3, descend_from_unique=False
    )
    agent = IdentityAgent(("item",), config)
    agent.extend({"item": 100})
    ids = torch.arange(100)
    positions = torch.cat([torch.full((50,), 2), torch.ones(50, dtype=torch.int64)])
    seen = agent.observe("item", ids, torch.full((100,), 0.5), torch.full((100,), 3), positions)
    actions = agent.decide(seen)
    assert not bool((actions[:50] == 0).any())  # no unique ID descends
    assert int((actions[50:] == 0).sum()) > 25  # at level 1 the descents stay (a no-op there)
    behaviour = agent.open["item"].arrays["behaviour"].float()
    merged = (actions[:50] == 1).nonzero().reshape(-1)
    assert len(merged) > 25
    # drawn "descend" or "unchanged", one outcome: b(descend) + b(unchanged)
    # = 0.7 (π0 + π1) + 0.2 ≈ 0.9 (float16); at level 1 the draw's own probability stays
    np.testing.assert_allclose(behaviour[merged].numpy(), 0.9, atol=2e-3)
    level_descents = 50 + (actions[50:] == 0).nonzero().reshape(-1)
    np.testing.assert_allclose(behaviour[level_descents].numpy(), 0.8, atol=2e-3)
