"""Reusable reinforcement-learning parts: agents, replay buffers, exploration. No recsys here."""

from leanrec.rl.actor_critic import (
    ActorCriticConfig,
    BehaviourReplayBuffer,
    DiscreteActorCritic,
    importance_ratio,
)
from leanrec.rl.exploration import (
    GaussianNoise,
    Noise,
    OrnsteinUhlenbeckNoise,
    UniformNoise,
    make_noise,
    random_walk,
)
from leanrec.rl.reinforce import CategoricalPolicy, ReinforceAgent
from leanrec.rl.replay import ReplayBuffer, Transitions
from leanrec.rl.td3 import TD3Agent, TD3Config

__all__ = [
    "ActorCriticConfig",
    "BehaviourReplayBuffer",
    "CategoricalPolicy",
    "DiscreteActorCritic",
    "GaussianNoise",
    "Noise",
    "OrnsteinUhlenbeckNoise",
    "ReinforceAgent",
    "ReplayBuffer",
    "TD3Agent",
    "TD3Config",
    "Transitions",
    "UniformNoise",
    "importance_ratio",
    "make_noise",
    "random_walk",
]
