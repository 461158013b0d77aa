"""Twin Delayed DDPG (TD3; Fujimoto et al., ICML 2018) for a bounded scalar-or-vector action.

The algorithm in one place, readable top to bottom:

- an actor ``μ(s)`` squashed by ``tanh`` into ``[low, high]``;
- twin critics ``Q1, Q2``; the TD target uses the *smaller* target-critic value (clipped double-Q)
  at a *smoothed* target action ``μ'(s') + clip(N(0, σ_target), ±c)`` (target policy smoothing);
- the actor and the target networks are updated every ``policy_delay`` critic updates (delayed
  policy updates), targets by Polyak averaging with rate ``tau``.

No recommender code lives here: the environment is whoever calls :meth:`TD3Agent.act` and
:meth:`TD3Agent.update`.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from leanrec.rl.replay import Transitions


@dataclass
class TD3Config:
    """Hyper-parameters of :class:`TD3Agent` (defaults of Fujimoto et al. unless noted)."""

    hidden: int = 64
    """Width of the two hidden layers of actor and critics (small states need small nets)."""
    actor_lr: float = 1e-3
    """Adam step size of the actor."""
    critic_lr: float = 1e-3
    """Adam step size of the critics."""
    gamma: float = 0.9
    """Discount γ (episodes here are short: a few iterations)."""
    tau: float = 0.005
    """Polyak rate of the target networks."""
    target_noise: float = 0.2
    """Std of target policy smoothing noise, as a fraction of the half-range of actions."""
    target_noise_clip: float = 0.5
    """Clip of that noise, same unit."""
    policy_delay: int = 2
    """Critic updates per actor (and target) update."""


class Actor(nn.Module):
    """``μ(s)``: ``(B, state_dim) -> (B, action_dim)`` in ``[low, high]``."""

    scale: torch.Tensor
    bias: torch.Tensor

    def __init__(self, state_dim: int, action_dim: int, low: float, high: float, hidden: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(state_dim, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, action_dim),
        )
        self.register_buffer("scale", torch.tensor((high - low) / 2.0))
        self.register_buffer("bias", torch.tensor((high + low) / 2.0))

    def forward(self, states: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.net(states)) * self.scale + self.bias


class Critic(nn.Module):
    """``Q(s, a)``: ``(B, state_dim), (B, action_dim) -> (B,)``.

    Actions are rescaled to ``[-1, 1]`` before entering the network.
    """

    def __init__(self, state_dim: int, action_dim: int, low: float, high: float, hidden: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(state_dim + action_dim, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, 1),
        )
        self.low, self.high = low, high

    def forward(self, states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        scaled = 2.0 * (actions - self.low) / (self.high - self.low) - 1.0
        return self.net(torch.cat([states, scaled], dim=1)).squeeze(1)


class TD3Agent(nn.Module):
    """Actor, twin critics and their targets, with their optimizers.

    Args:
        state_dim: length of a state.
        action_dim: length of an action.
        low, high: action bounds.
        config: hyper-parameters.

    Example:
        >>> agent = TD3Agent(3, 1, low=1.0, high=128.0)
        >>> agent.act(torch.rand(5, 3)).shape
        torch.Size([5, 1])
    """

    def __init__(
        self,
        state_dim: int,
        action_dim: int,
        low: float,
        high: float,
        config: TD3Config | None = None,
    ) -> None:
        super().__init__()
        self.config = config or TD3Config()
        self.low, self.high = low, high
        hidden = self.config.hidden
        self.actor = Actor(state_dim, action_dim, low, high, hidden)
        self.critic1 = Critic(state_dim, action_dim, low, high, hidden)
        self.critic2 = Critic(state_dim, action_dim, low, high, hidden)
        self.actor_target = copy.deepcopy(self.actor)
        self.critic1_target = copy.deepcopy(self.critic1)
        self.critic2_target = copy.deepcopy(self.critic2)
        for target in (self.actor_target, self.critic1_target, self.critic2_target):
            target.requires_grad_(False)
        self.actor_optimizer = torch.optim.Adam(self.actor.parameters(), lr=self.config.actor_lr)
        self.critic_optimizer = torch.optim.Adam(
            list(self.critic1.parameters()) + list(self.critic2.parameters()),
            lr=self.config.critic_lr,
        )
        self.critic_updates = 0

    @torch.no_grad()
    def act(self, states: torch.Tensor) -> torch.Tensor:
        """Deterministic actions ``μ(s)``, ``(B, action_dim)``."""
        return self.actor(states)

    @torch.no_grad()
    def q_value(self, states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """``min(Q1, Q2)(s, a)``, ``(B,)`` (used to rank candidate actions)."""
        return torch.minimum(self.critic1(states, actions), self.critic2(states, actions))

    def update(self, batch: Transitions) -> dict[str, float]:
        """One critic step, and every ``policy_delay`` steps one actor + target step."""
        cfg = self.config
        half_range = (self.high - self.low) / 2.0
        with torch.no_grad():
            noise = torch.randn_like(batch.actions) * cfg.target_noise * half_range
            noise = noise.clamp(
                -cfg.target_noise_clip * half_range, cfg.target_noise_clip * half_range
            )
            next_actions = (self.actor_target(batch.next_states) + noise).clamp(self.low, self.high)
            next_q = torch.minimum(
                self.critic1_target(batch.next_states, next_actions),
                self.critic2_target(batch.next_states, next_actions),
            )
            target = batch.rewards + cfg.gamma * (1.0 - batch.dones) * next_q
        q1 = self.critic1(batch.states, batch.actions)
        q2 = self.critic2(batch.states, batch.actions)
        critic_loss = F.mse_loss(q1, target) + F.mse_loss(q2, target)
        self.critic_optimizer.zero_grad(set_to_none=True)
        critic_loss.backward()
        self.critic_optimizer.step()
        self.critic_updates += 1
        losses = {"critic_loss": float(critic_loss.detach()), "q": float(q1.detach().mean())}
        if self.critic_updates % cfg.policy_delay == 0:
            actor_loss = -self.critic1(batch.states, self.actor(batch.states)).mean()
            self.actor_optimizer.zero_grad(set_to_none=True)
            actor_loss.backward()
            self.actor_optimizer.step()
            self._soft_update()
            losses["actor_loss"] = float(actor_loss.detach())
        return losses

    @torch.no_grad()
    def _soft_update(self) -> None:
        tau = self.config.tau
        pairs = (
            (self.actor, self.actor_target),
            (self.critic1, self.critic1_target),
            (self.critic2, self.critic2_target),
        )
        for online, target in pairs:
            for p, p_target in zip(online.parameters(), target.parameters(), strict=True):
                p_target.mul_(1.0 - tau).add_(p, alpha=tau)

    def full_state(self) -> dict[str, Any]:
        """Networks, optimizers and the update counter (for resuming a search)."""
        return {
            "networks": self.state_dict(),
            "actor_optimizer": self.actor_optimizer.state_dict(),
            "critic_optimizer": self.critic_optimizer.state_dict(),
            "critic_updates": self.critic_updates,
        }

    def load_full_state(self, state: dict[str, Any]) -> None:
        self.load_state_dict(state["networks"])
        self.actor_optimizer.load_state_dict(state["actor_optimizer"])
        self.critic_optimizer.load_state_dict(state["critic_optimizer"])
        self.critic_updates = int(state["critic_updates"])
